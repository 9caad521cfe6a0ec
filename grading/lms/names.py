"""Names, emails and LMS ids of a course's students, for nbgrader's `Student` table.

Two sources, both from the LMS: each student's newest launch (the hub's LTI store: identity
display name and email, the LTI user id) and the NRPS roster (`lms_roster`: given and family name
as well). The roster's parts win where both exist, as the launch carries only a full name; the LMS
id is the LMS's own where a launch brought it (Canvas's numeric user id), else the LTI `sub`. The
gradebook is updated only where a value changed, so running this often is cheap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .models import RosterRow
from .roster import student_record


def launch_students(store: Any, course_id: str, since: float | None = None) -> dict[str, dict]:
    """{username: Student fields} for everyone whose newest launch in the course was as a student
    (and after `since`, epoch seconds, when given)."""
    out: dict[str, dict] = {}
    lms_ids = store.platform_user_ids()  # e.g. Canvas's numeric ids: what its gradebook import matches
    for row in store.services(course=course_id):
        if row.get("role") != "student" or (since is not None and float(row.get("updated_at") or 0) <= since):
            continue
        ident = store.find_identity(row["issuer"], row["subject"])
        name = ident.display_name if ident else ""
        email = ident.email if ident else ""
        lms_id = lms_ids.get((row["issuer"], row["subject"])) or row["subject"]
        out[row["username"]] = student_record(row["username"], lms_id, name, "", "", email)
    return out


def roster_students(sessions: sessionmaker[Session], course_id: str) -> dict[str, dict]:
    with sessions() as s:
        rows = s.scalars(select(RosterRow).where(RosterRow.course_id == course_id, RosterRow.role == "student"))
        return {r.username: student_record(r.username, r.lti_user_id, r.name, r.given_name, r.family_name, r.email)
                for r in rows}


def course_students(store: Any, sessions: sessionmaker[Session], course_id: str,
                    since: float | None = None) -> list[dict]:
    """Both sources merged; a roster value wins over the launch's, a missing one never erases.
    With `since`, only people who launched after it (their roster values still win)."""
    merged = launch_students(store, course_id, since)
    for username, rec in roster_students(sessions, course_id).items():
        if since is not None and username not in merged:
            continue
        base = merged.get(username, {"id": username})
        # the launch's LMS id wins: it is the LMS's own (Canvas's number) where the LMS sent one
        merged[username] = {**base, **{k: v for k, v in rec.items()
                                       if v is not None and not (k == "lms_user_id" and base.get(k))}}
    return [merged[u] for u in sorted(merged)]
