"""Roster sync from NRPS: members join the course groups and the gradebook; leavers lose access.

The rule (the same in docs/operators/lms-registration.md): the LMS decides, and its newest word wins.
- A launch says one person's role in one course now: the login sets that course's group to it.
- A roster sync says everyone's: members are added to their role's group; a member whose role
  changed leaves the old role's group at once; a member who left (NRPS status Inactive/Deleted,
  absent from a complete roster, or an observer/mentor now) loses the course's staff groups at once
  and the student group when the grace period has passed since the roster first missed them.
- Removal happens once, on that change: someone who launches again afterwards (the LMS let them in,
  which is newer news) keeps what the launch gave until the roster lists them and they leave again.
- Nothing else is removed: work, submissions, grades and the gradebook's student row stay, and
  `lms_roster` marks leavers (`left_at`, `access_ended_at`) without deleting them.

Members can leave while the roster is being paged (offsets shift, someone is skipped): a person
missing from a complete walk is only taken as gone if a second walk misses them too. An
incomplete walk (page loop, page cap) marks nobody.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from coursehub.platform.groups import STAFF_ROLES
from coursehub.platform.lti.roles import course_role, is_course_role

from .. import metrics
from ..clock import naive_utcnow as utcnow
from .models import RosterRow
from .records import LaunchServices, ServiceRegistration
from .services import Page, ServiceClient

log = logging.getLogger("coursehub.grading.lms")

DEFAULT_GRACE = dt.timedelta(days=14)


class RosterSink(Protocol):
    """Where members go. Methods may be plain or async; `remove_members` is optional."""

    def add_members(self, course_id: str, role: str, usernames: list[str]): ...
    def ensure_students(self, students: list[dict]): ...


class Identities(Protocol):
    def username_for(self, platform: ServiceRegistration, lti_user_id: str, name: str, email: str) -> str: ...


@dataclass
class RosterReport:
    members: int = 0
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    #: (username, role) whose course group was taken away in this sync.
    removed: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = True
    pages: int = 0
    problem: str = ""
    observers: int = 0  # members with only observer or mentor roles: no course group


async def _maybe(result):  # noqa: ANN001
    return await result if inspect.isawaitable(result) else result


def _split(page: Page) -> tuple[dict[str, dict], set[str], int]:
    """(active members by user id, ids the LMS says are gone, observers)."""
    active: dict[str, dict] = {}
    gone: set[str] = set()
    observers = 0
    for m in page.members:
        uid = m.get("user_id")
        if not isinstance(uid, str) or not uid:
            continue
        if str(m.get("status", "Active")).lower() in ("inactive", "deleted"):
            gone.add(uid)
        elif not is_course_role(course_role(m.get("roles") or [])):
            gone.add(uid)  # observers and mentors get no course role, as at launch
            observers += 1
        else:
            active[uid] = m
    return active, gone, observers


def _names(m: dict) -> tuple[str, str, str]:
    given, family = str(m.get("given_name") or ""), str(m.get("family_name") or "")
    return str(m.get("name") or " ".join(p for p in (given, family) if p)), given, family


def student_record(username: str, lti_user_id: str, name: str, given: str, family: str, email: str) -> dict:
    """A row for nbgrader's Student table; a full name without parts is split at its last space."""
    if not (given or family) and name.strip():
        head, _, tail = name.strip().rpartition(" ")
        given, family = (head, tail) if head else ("", tail)
    return {"id": username, "first_name": given or None, "last_name": family or None, "email": email or None,
            "lms_user_id": lti_user_id or None}


async def sync_roster(sessions: sessionmaker[Session], client: ServiceClient, svc: LaunchServices,
                      sink: RosterSink, identities: Identities, now: dt.datetime | None = None,
                      grace: dt.timedelta = DEFAULT_GRACE) -> RosterReport:
    """One NRPS sync of one LMS context, counted in the roster metrics (outcome, people added and
    removed) whether it succeeds or raises."""
    try:
        report = await _sync_roster(sessions, client, svc, sink, identities, now, grace)
    except BaseException:
        metrics.ROSTER_SYNCS.labels("failed").inc()
        raise
    metrics.ROSTER_SYNCS.labels("ok" if report.complete else "incomplete").inc()
    metrics.ROSTER_MEMBERS.labels("added").inc(len(report.joined))
    metrics.ROSTER_MEMBERS.labels("removed").inc(len(report.removed))
    return report


async def _sync_roster(sessions: sessionmaker[Session], client: ServiceClient, svc: LaunchServices,
                       sink: RosterSink, identities: Identities, now: dt.datetime | None,
                       grace: dt.timedelta) -> RosterReport:
    now = now or utcnow()
    page = await client.members(svc)
    active, gone, observers = _split(page)
    report = RosterReport(complete=page.complete, pages=page.pages, problem=page.problem, observers=observers)
    issuer = svc.platform.issuer
    with sessions() as s:
        existing = {r.lti_user_id: r for r in s.scalars(
            select(RosterRow).where(RosterRow.course_id == svc.course_id, RosterRow.issuer == issuer))}
    missing = {uid for uid, r in existing.items() if r.status == "active" and uid not in active and uid not in gone}
    confirmed_gone: set[str] = set()
    if page.complete and missing:  # confirm with a second walk: paging may have skipped someone
        again = await client.members(svc)
        active2, gone2, _ = _split(again)
        for uid in missing:
            if uid in active2:
                active[uid] = active2[uid]
            elif again.complete:
                confirmed_gone.add(uid)
        gone |= gone2 & missing
    report.members = len(active)
    by_role: dict[str, list[str]] = {}
    remove: dict[str, list[str]] = {}
    students: list[dict] = []
    ended: list[str] = []
    lookup = getattr(identities, "platform_user_ids", None)
    lms_ids = lookup(issuer) if lookup is not None else {}
    with sessions() as s:
        rows = {r.lti_user_id: r for r in s.scalars(
            select(RosterRow).where(RosterRow.course_id == svc.course_id, RosterRow.issuer == issuer))}
        for uid, m in active.items():
            name, given, family = _names(m)
            email = str(m.get("email") or "")
            role = course_role(m.get("roles") or [])
            row = rows.get(uid)
            username = row.username if row else identities.username_for(svc.platform, uid, name, email)
            if row is None:
                row = RosterRow(course_id=svc.course_id, issuer=issuer, lti_user_id=uid, username=username,
                                first_seen=now)
                s.add(row)
                report.joined.append(username)
            elif row.status == "left":
                report.joined.append(username)
            elif row.role and row.role != role:
                remove.setdefault(row.role, []).append(username)  # role changed: old group at once
            row.role, row.name, row.email, row.given_name, row.family_name = role, name, email, given, family
            row.status, row.last_seen, row.left_at, row.access_ended_at = "active", now, None, None
            by_role.setdefault(role, []).append(username)
            if role == "student":
                lms_id = lms_ids.get(uid) or uid  # the LMS's own id (Canvas's number) from a launch, if any
                students.append(student_record(username, lms_id, name, given, family, email))
        for uid, row in rows.items():
            leaving = uid in gone or uid in confirmed_gone
            if leaving and row.status != "left":
                row.status, row.left_at = "left", now
                report.left.append(row.username)
            if row.status == "left" and row.access_ended_at is None and (
                    row.role in STAFF_ROLES or (row.left_at is not None and row.left_at + grace <= now)):
                remove.setdefault(row.role, []).append(row.username)
                row.access_ended_at = now
                ended.append(row.username)
        # the hub first: if it refuses, nothing is recorded and the next sync does it all again
        for role, usernames in by_role.items():
            await _maybe(sink.add_members(svc.course_id, role, sorted(usernames)))
        remover = getattr(sink, "remove_members", None)
        if remover is not None:
            for role, usernames in remove.items():
                keep = set(by_role.get(role, ()))
                gone_now = sorted(set(usernames) - keep)
                if gone_now:
                    await _maybe(remover(svc.course_id, role, gone_now))
                    report.removed += [(u, role) for u in gone_now]
        if students:
            await _maybe(sink.ensure_students(students))
        s.commit()
    log.info("roster %s: %d members, %d joined, %d left, %d group removals%s", svc.course_id, report.members,
             len(report.joined), len(report.left), len(report.removed),
             "" if report.complete else f" (incomplete: {report.problem})")
    return report


class StoreIdentities:
    """Usernames the way a launch makes them: (issuer, sub) through the hub's LTI identity table."""

    def __init__(self, store):  # noqa: ANN001 - coursehub.platform.lti.store.LtiStore
        self.store = store

    def username_for(self, platform: ServiceRegistration, lti_user_id: str, name: str, email: str) -> str:
        from coursehub.platform.lti.identity import username_candidates

        return self.store.claim_identity(platform.issuer, lti_user_id,
                                         username_candidates(platform.name, platform.issuer, lti_user_id),
                                         display_name=name, email=email).username

    def platform_user_ids(self, issuer: str) -> dict[str, str]:
        """{sub: the LMS's own user id} that launches brought (Canvas's numeric ids)."""
        return {sub: uid for (_iss, sub), uid in self.store.platform_user_ids(issuer).items()}


class GradebookSink:
    """Students into the course's nbgrader gradebook (with their LMS user id); groups via `groups`."""

    def __init__(self, db_url: str, groups: RosterSink | None = None):
        self.db_url = db_url
        self.groups = groups

    async def add_members(self, course_id: str, role: str, usernames: list[str]) -> None:
        if self.groups is not None:
            await _maybe(self.groups.add_members(course_id, role, usernames))

    async def remove_members(self, course_id: str, role: str, usernames: list[str]) -> None:
        remover = getattr(self.groups, "remove_members", None)
        if remover is not None:
            await _maybe(remover(course_id, role, usernames))

    def ensure_students(self, students: list[dict]) -> int:
        from coursehub.grading.gradebook import upsert_students

        return upsert_students(self.db_url, students)
