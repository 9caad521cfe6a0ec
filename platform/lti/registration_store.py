"""Platforms registered through LTI Dynamic Registration, and the one-time links that allow it.

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

from .registry import Registration

metadata = sa.MetaData()

registrations = sa.Table(
    "coursehub_lti_registrations", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.String(512), nullable=False),
    #: JSON of Registration.to_dict().
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

links = sa.Table(
    "coursehub_lti_registration_links", metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    #: The platform name the admin chose ('' = from the LMS's host).
    sa.Column("name", sa.String(64), nullable=False, default=""),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RegistrationStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        metadata.create_all(engine)

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

    def save(self, registration: Registration) -> None:
        with self.engine.begin() as c:
            c.execute(sa.insert(registrations).values(
                name=registration.name, issuer=registration.issuer,
                data=json.dumps(registration.to_dict()), created_at=time.time()))

    def all(self) -> list[Registration]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(registrations).order_by(registrations.c.created_at)).all()
        return [Registration.from_dict(json.loads(r.data)) for r in rows]
