"""Platforms registered through LTI Dynamic Registration, the one-time links that allow it, and
the operators' approve/reject decisions on them.

A registration arrives *pending*: the LMS admin who ran the handshake is not the coursehub operator,
so nothing is launched and no grades or rosters are exchanged until an operator approves it.

They live in the LTI database (next to `store.py`'s tables, on the same engine), so a registration
survives restarts and needs no YAML edit; YAML registrations keep working beside them. A link's
token is kept only as its SHA-256: a database dump does not hand out registration rights.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

import sqlalchemy as sa

from .registry import LaunchRegistration
from .tables import links, registrations, states

PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RegistrationStore:
    def __init__(self, engine: sa.Engine):
        """On the engine of an LtiStore, which brought the schema (these tables too) up to date."""
        self.engine = engine

    def create_link(self, created_by: str, name: str = "", ttl: float = 86400) -> str:
        """A new one-time registration token (returned once, stored hashed)."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            c.execute(sa.delete(links).where(links.c.expires_at < time.time()))
            c.execute(sa.insert(links).values(token_sha256=_sha(token), name=name, created_by=created_by,
                                              expires_at=time.time() + ttl))
        return token

    def consume_link(self, token: str) -> dict | None:
        """{"name", "created_by"} of a valid token, exactly once; None for unknown or expired ones."""
        if not token or len(token) > 128:
            return None
        with self.engine.begin() as c:
            row = c.execute(sa.select(links).where(links.c.token_sha256 == _sha(token))).first()
            if row is None:
                return None
            gone = c.execute(sa.delete(links).where(links.c.token_sha256 == row.token_sha256)).rowcount
        if gone != 1 or row.expires_at < time.time():
            return None
        return {"name": row.name, "created_by": row.created_by}

    def save(self, registration: LaunchRegistration, state: str = PENDING, by: str = "registration") -> None:
        """Store a new registration, pending an operator's approval unless `state` says otherwise."""
        if state not in (PENDING, ACTIVE, DISABLED):
            raise ValueError(f"unknown registration state {state!r}")
        now = time.time()
        with self.engine.begin() as c:
            c.execute(sa.insert(registrations).values(
                name=registration.name, issuer=registration.issuer,
                data=json.dumps(registration.to_dict()), created_at=now))
            c.execute(sa.delete(states).where(states.c.name == registration.name))
            c.execute(sa.insert(states).values(name=registration.name, state=state, changed_by=by[:255],
                                               changed_at=now))

    def all(self, active_only: bool = False) -> list[LaunchRegistration]:
        """Stored registrations, oldest first (only the active ones with `active_only`)."""
        return [LaunchRegistration.from_dict(json.loads(r["data"])) for r in self.listing()
                if r["state"] == ACTIVE or not active_only]

    def listing(self) -> list[dict]:
        """Every stored registration with its state and who set it: {"name", "issuer", "data" (JSON),
        "created_at", "state", "changed_by", "changed_at"}."""
        q = (sa.select(registrations, states.c.state, states.c.changed_by, states.c.changed_at)
             .join(states, states.c.name == registrations.c.name, isouter=True)
             .order_by(registrations.c.created_at))
        with self.engine.connect() as c:
            return [{**dict(r._mapping), "state": r.state or ACTIVE} for r in c.execute(q)]

    def set_state(self, name: str, state: str, changed_by: str) -> bool:
        """Approve (ACTIVE) or reject (DISABLED) a stored registration, pending or not; False if
        there is none. Nothing goes back to PENDING: that state is only a new arrival's."""
        if state not in (ACTIVE, DISABLED):
            raise ValueError(f"state must be {ACTIVE!r} or {DISABLED!r}")
        with self.engine.begin() as c:
            if c.execute(sa.select(registrations.c.name).where(registrations.c.name == name)).first() is None:
                return False
            c.execute(sa.delete(states).where(states.c.name == name))
            c.execute(sa.insert(states).values(name=name, state=state, changed_by=changed_by[:255],
                                               changed_at=time.time()))
        return True

    def blocked(self, registration: LaunchRegistration) -> str | None:
        """PENDING or DISABLED when this very registration is stored and may not launch; None when it
        may (active, or not a stored one: a settings entry of the same name is another registration).
        Read at every launch, so a decision made with the command line holds at once, without a hub
        restart."""
        q = (sa.select(registrations.c.data, states.c.state)
             .join(states, states.c.name == registrations.c.name)
             .where(registrations.c.name == registration.name, states.c.state.in_((PENDING, DISABLED))))
        with self.engine.connect() as c:
            row = c.execute(q).first()
        if row is None or LaunchRegistration.from_dict(json.loads(row.data)) != registration:
            return None
        return row.state
