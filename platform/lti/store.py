"""The LTI tables coursehub keeps itself: issued nonces, identities, launch services and the
LMS's own user ids.

JupyterHub's database is not ours to extend, and auth_state is overwritten on every launch, so
these live in a small database of their own: SQLite in the state folder by default, or tables
prefixed `coursehub_lti_` in any SQLAlchemy URL (e.g. the hub's PostgreSQL) at scale. Their schema is
kept by alembic (schema.py, migrations/), brought up to date when a store is opened. Everything
here is quick, indexed, single-row work, so it runs inline on the hub's event loop like the hub's
own database calls.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..database import make_engine
from .tables import identities, launch_services, metadata, nonces, platform_user_ids  # noqa: F401 - metadata: re-exported


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    username: str
    display_name: str
    email: str


class LtiStore:
    """All reads and writes of the LTI tables, on one SQLAlchemy engine."""

    def __init__(self, url: str):
        # hide_parameters: a failing statement never puts names or emails into an error log.
        # durable=False (SQLite synchronous=NORMAL): commits survive a hub crash without an fsync
        # each; a power cut may lose the last moments (a nonce spent then could be accepted once
        # more within its few minutes of validity, still bound to the same browser's cookie).
        from .schema import upgrade

        upgrade(url)  # alembic, one process at a time (platform/lti/schema.py)
        self.engine = make_engine(url, durable=False, hide_parameters=True)

    # --- nonces -------------------------------------------------------------------------------
    def issue_nonce(self, nonce: str, ttl: float) -> None:
        """Remember a nonce we sent in an authentication request, until it expires."""
        now = time.time()
        with self.engine.begin() as c:
            c.execute(sa.delete(nonces).where(nonces.c.expires_at < now))
            c.execute(sa.insert(nonces).values(nonce=nonce, expires_at=now + ttl))

    def consume_nonce(self, nonce: str) -> bool:
        """True exactly once for a nonce we issued and that has not expired; it is gone after."""
        with self.engine.begin() as c:
            deleted = c.execute(
                sa.delete(nonces).where(nonces.c.nonce == nonce, nonces.c.expires_at >= time.time())
            ).rowcount
        return deleted == 1

    # --- identities ---------------------------------------------------------------------------
    def find_identity(self, issuer: str, subject: str) -> Identity | None:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(identities).where(identities.c.issuer == issuer, identities.c.subject == subject)
            ).first()
        return _identity(row) if row else None

    def username_taken(self, username: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(sa.select(identities.c.id).where(identities.c.username == username)).first() is not None

    def find_linked(self, link_value: str, exclude_issuer: str) -> Identity | None:
        """An identity from another issuer that carries the same link value (account linking)."""
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(identities)
                .where(identities.c.link_value == link_value, identities.c.issuer != exclude_issuer)
                .order_by(identities.c.id)
            ).first()
        return _identity(row) if row else None

    def claim_identity(self, issuer: str, subject: str, candidates: list[str], *, display_name: str = "",
                       email: str = "", link_value: str | None = None, username: str | None = None) -> Identity:
        """The identity of (issuer, subject): existing, or new with the first free candidate username.

        `username` forces a name (account linking). Unique constraints make two subjects sharing a
        name impossible even when two launches race.
        """
        _check_ids(identities, issuer=issuer, subject=subject, link_value=link_value)
        display_name, email = _clip(identities, "display_name", display_name), _clip(identities, "email", email)
        now = time.time()
        existing = self.find_identity(issuer, subject)
        if existing is not None:
            with self.engine.begin() as c:
                c.execute(
                    sa.update(identities)
                    .where(identities.c.issuer == issuer, identities.c.subject == subject)
                    .values(display_name=display_name or existing.display_name, email=email or existing.email,
                            link_value=link_value, updated_at=now)
                )
            return Identity(issuer, subject, existing.username, display_name or existing.display_name,
                            email or existing.email)
        names = [username] if username else candidates
        for name in names:
            if not username and self.username_taken(name):
                continue
            try:
                with self.engine.begin() as c:
                    c.execute(sa.insert(identities).values(
                        issuer=issuer, subject=subject, username=name, display_name=display_name,
                        email=email, link_value=link_value, updated_at=now,
                    ))
                return Identity(issuer, subject, name, display_name, email)
            except IntegrityError:  # the same (issuer, subject) raced us in: use theirs
                found = self.find_identity(issuer, subject)
                if found is not None:
                    return found
        raise RuntimeError("no free username for this identity")

    # --- launch services ----------------------------------------------------------------------
    def save_services(self, *, username: str, course: str, platform: str, issuer: str, client_id: str,
                      deployment_id: str, context_id: str, subject: str, role: str,
                      ags: dict | None, nrps: dict | None, resource_link: dict | None) -> None:
        """Upsert the services of the newest launch of `username` in `course`.

        AGS/NRPS claims absent from a launch keep the values of earlier launches (a link without a
        grade column must not forget the course's line items).
        """
        _check_ids(launch_services, username=username, course=course, platform=platform, issuer=issuer,
                   client_id=client_id, deployment_id=deployment_id, context_id=context_id, subject=subject,
                   role=role)
        now = time.time()
        with self.engine.begin() as c:
            row = c.execute(sa.select(launch_services).where(
                launch_services.c.username == username, launch_services.c.course == course)).first()
            links = json.loads(row.resource_links) if row else {}
            if resource_link and resource_link.get("id"):
                links[resource_link["id"]] = {
                    "title": resource_link.get("title", ""),
                    "lineitem": (ags or {}).get("lineitem"),
                }
            values = dict(
                platform=platform, issuer=issuer, client_id=client_id, deployment_id=deployment_id,
                context_id=context_id, subject=subject, role=role,
                ags=json.dumps(ags) if ags else (row.ags if row else None),
                nrps=json.dumps(nrps) if nrps else (row.nrps if row else None),
                resource_links=json.dumps(links), updated_at=now,
            )
            if row:
                c.execute(sa.update(launch_services).where(
                    launch_services.c.username == username, launch_services.c.course == course).values(**values))
            else:
                c.execute(sa.insert(launch_services).values(username=username, course=course, **values))

    # --- the LMS's own user ids ---------------------------------------------------------------
    def save_platform_user_id(self, issuer: str, subject: str, user_id: str) -> None:
        """Remember the LMS's own id of (issuer, sub), e.g. Canvas's numeric user id; the newest wins."""
        _check_ids(platform_user_ids, issuer=issuer, subject=subject, user_id=user_id)
        with self.engine.begin() as c:
            where = (platform_user_ids.c.issuer == issuer, platform_user_ids.c.subject == subject)
            if c.execute(sa.update(platform_user_ids).where(*where).values(
                    user_id=user_id, updated_at=time.time())).rowcount == 0:
                try:
                    with c.begin_nested():
                        c.execute(sa.insert(platform_user_ids).values(issuer=issuer, subject=subject, user_id=user_id,
                                                                      updated_at=time.time()))
                except IntegrityError:  # a concurrent first launch stored it: same person, same id
                    c.execute(sa.update(platform_user_ids).where(*where).values(user_id=user_id,
                                                                                updated_at=time.time()))

    def platform_user_ids(self, issuer: str | None = None) -> dict[tuple[str, str], str]:
        """{(issuer, sub): the LMS's own user id} (of one issuer when given)."""
        q = sa.select(platform_user_ids)
        if issuer is not None:
            q = q.where(platform_user_ids.c.issuer == issuer)
        with self.engine.connect() as c:
            return {(r.issuer, r.subject): r.user_id for r in c.execute(q)}

    def services(self, username: str | None = None, course: str | None = None) -> list[dict]:
        q = sa.select(launch_services)
        if username is not None:
            q = q.where(launch_services.c.username == username)
        if course is not None:
            q = q.where(launch_services.c.course == course)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(launch_services.c.course, launch_services.c.username)).all()
        out = []
        for r in rows:
            d = dict(r._mapping)
            d["ags"] = json.loads(d["ags"]) if d["ags"] else None
            d["nrps"] = json.loads(d["nrps"]) if d["nrps"] else None
            d["resource_links"] = json.loads(d["resource_links"] or "{}")
            out.append(d)
        return out

    def dispose(self) -> None:
        self.engine.dispose()


def _check_ids(table: sa.Table, **values: str | None) -> None:
    """Identifiers are never cut short (two people could then share one): a ValueError names the
    column, never the value. Launch claims are bounded before they get here (claim_schema.py)."""
    for name, value in values.items():
        limit = table.c[name].type.length
        if value is not None and limit is not None and len(value) > limit:
            raise ValueError(f"{table.name}.{name}: longer than {limit} characters")


def _clip(table: sa.Table, column: str, value: str) -> str:
    """Display values (names, emails) fit their column."""
    return value[: table.c[column].type.length]


def _identity(row: Any) -> Identity:
    return Identity(row.issuer, row.subject, row.username, row.display_name or "", row.email or "")
