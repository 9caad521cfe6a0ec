"""Roster sync from NRPS: members join the course groups and the gradebook; leavers are marked.

People who leave (NRPS status Inactive/Deleted, or absent from a complete roster) get
`status = "left"` and `left_at` in `lms_roster`; nothing is deleted, neither from the groups nor the
gradebook, so their grades and work stay. An incomplete walk (page loop, page cap) marks nobody.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coursehub.platform.lti.roles import course_role, is_course_role

from .models import RosterRow, utcnow
from .records import LaunchServices, PlatformRegistration
from .services import ServiceClient

log = logging.getLogger("coursehub.grading.lms")


class RosterSink(Protocol):
    """Where members go. Methods may be plain or async."""

    def add_members(self, course_id: str, role: str, usernames: list[str]): ...
    def ensure_students(self, students: list[dict]): ...


class Identities(Protocol):
    def username_for(self, platform: PlatformRegistration, lti_user_id: str, name: str, email: str) -> str: ...


@dataclass
class RosterReport:
    members: int = 0
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    complete: bool = True
    pages: int = 0
    problem: str = ""
    observers: int = 0  # members with only observer or mentor roles: no course group


async def _maybe(result):  # noqa: ANN001
    return await result if inspect.isawaitable(result) else result


async def sync_roster(sessions: sessionmaker[Session], client: ServiceClient, svc: LaunchServices,
                      sink: RosterSink, identities: Identities, now: dt.datetime | None = None) -> RosterReport:
    now = now or utcnow()
    page = await client.members(svc)
    report = RosterReport(complete=page.complete, pages=page.pages, problem=page.problem)
    issuer = svc.platform.issuer
    active: dict[str, dict] = {}
    gone: set[str] = set()
    for m in page.members:
        uid = m.get("user_id")
        if not isinstance(uid, str) or not uid:
            continue
        if str(m.get("status", "Active")).lower() in ("inactive", "deleted"):
            gone.add(uid)
        elif not is_course_role(course_role(m.get("roles") or [])):
            gone.add(uid)  # observers and mentors get no course role, as at launch
            report.observers += 1
        else:
            active[uid] = m
    report.members = len(active)
    by_role: dict[str, list[str]] = {}
    students: list[dict] = []
    with sessions() as s:
        existing = {r.lti_user_id: r for r in s.scalars(
            select(RosterRow).where(RosterRow.course_id == svc.course_id, RosterRow.issuer == issuer))}
        for uid, m in active.items():
            name = str(m.get("name") or " ".join(p for p in (m.get("given_name"), m.get("family_name")) if p))
            email = str(m.get("email") or "")
            role = course_role(m.get("roles") or [])
            row = existing.get(uid)
            username = row.username if row else identities.username_for(svc.platform, uid, name, email)
            if row is None:
                row = RosterRow(course_id=svc.course_id, issuer=issuer, lti_user_id=uid, username=username,
                                first_seen=now)
                s.add(row)
                report.joined.append(username)
            elif row.status == "left":
                report.joined.append(username)
            row.role, row.name, row.email = role, name, email
            row.status, row.last_seen, row.left_at = "active", now, None
            by_role.setdefault(role, []).append(username)
            if role == "student":
                students.append({"id": username, "first_name": m.get("given_name") or None,
                                 "last_name": m.get("family_name") or None, "email": email or None,
                                 "lms_user_id": uid})
        for uid, row in existing.items():
            leaving = uid in gone or (page.complete and uid not in active)
            if leaving and row.status != "left":
                row.status, row.left_at = "left", now
                report.left.append(row.username)
        s.commit()
    for role, usernames in by_role.items():
        await _maybe(sink.add_members(svc.course_id, role, sorted(usernames)))
    if students:
        await _maybe(sink.ensure_students(students))
    log.info("roster %s: %d members, %d joined, %d left%s", svc.course_id, report.members, len(report.joined),
             len(report.left), "" if report.complete else f" (incomplete: {report.problem})")
    return report


class StoreIdentities:
    """Usernames the way a launch makes them: (issuer, sub) through the hub's LTI identity table."""

    def __init__(self, store):  # noqa: ANN001 - coursehub.platform.lti.store.LtiStore
        self.store = store

    def username_for(self, platform: PlatformRegistration, lti_user_id: str, name: str, email: str) -> str:
        from coursehub.platform.lti.identity import username_candidates

        return self.store.claim_identity(platform.issuer, lti_user_id,
                                         username_candidates(platform.name, platform.issuer, lti_user_id),
                                         display_name=name, email=email).username


class GradebookSink:
    """Students into the course's nbgrader gradebook (with their LMS user id); groups via `groups`."""

    def __init__(self, db_url: str, groups: RosterSink | None = None):
        self.db_url = db_url
        self.groups = groups

    async def add_members(self, course_id: str, role: str, usernames: list[str]) -> None:
        if self.groups is not None:
            await _maybe(self.groups.add_members(course_id, role, usernames))

    def ensure_students(self, students: list[dict]) -> None:
        from nbgrader.api import Gradebook

        from coursehub.grading.gradebook import create_gradebook

        create_gradebook(self.db_url)  # no-op on an existing gradebook
        with Gradebook(self.db_url) as gb:
            for st in students:
                sid = st["id"]
                gb.update_or_create_student(sid, **{k: v for k, v in st.items() if k != "id" and v is not None})
