"""What the dashboard shows, computed from plain inputs (no web server, no database here).

Inputs: the gradebook snapshot (`coursehub.grading.export.Grades`), the exchange's releases and
submissions, the grading queue's counts and dead jobs, the LMS outbox's counts and failed rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class AssignmentStats:
    name: str
    title: str
    due: dt.datetime | None
    max_score: float
    released: bool
    submitted: int
    graded: int
    needs_manual: int
    late: int
    scores: list[float] = field(default_factory=list)
    #: Hours from the deadline of every submission (negative: before it).
    submission_hours: list[float] = field(default_factory=list)


@dataclass
class Overview:
    course_id: str
    title: str
    students: int
    assignments: list[AssignmentStats]
    queue: dict[str, int] = field(default_factory=dict)
    dead_jobs: list[dict] = field(default_factory=list)
    sync: dict[str, int] = field(default_factory=dict)
    sync_failed: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _naive_utc(value: Any) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def build_overview(course: Any, grades: Any | None, releases: list[dict], submissions: list[dict], *,
                   queue: dict[str, int] | None = None, dead_jobs: list[dict] | None = None,
                   sync: dict[str, int] | None = None, sync_failed: list[dict] | None = None,
                   problems: list[str] | None = None) -> Overview:
    """`course` is a coursehub Course; `grades` may be None when no gradebook exists yet."""
    released = {r["assignment_id"] for r in releases}
    names: list[str] = [a.id for a in course.assignments]
    gb_assignments = grades.assignments if grades is not None else pd.DataFrame(columns=["assignment"])
    for name in gb_assignments["assignment"]:
        if name not in names:
            names.append(name)
    names += sorted({s["assignment_id"] for s in submissions} - set(names))
    names += sorted(released - set(names))

    subs = pd.DataFrame(submissions, columns=["assignment_id", "student_id", "submitted_at", "late", "due_at"])
    long = grades.long if grades is not None else None
    stats = []
    for name in names:
        spec = course.assignment(name)
        title = (spec.title if spec and spec.title else name)
        due = _naive_utc(spec.due) if spec and spec.due else None
        max_score = float(spec.points) if spec and spec.points is not None else 0.0
        if grades is not None and name in set(gb_assignments["assignment"]):
            row = gb_assignments[gb_assignments["assignment"] == name].iloc[0]
            max_score = float(row["max_score"]) or max_score
            due = due or _naive_utc(row["duedate"])
        mine = subs[subs["assignment_id"] == name]
        submitted = int(mine["student_id"].nunique())
        late = 0
        if len(mine):
            latest = mine.sort_values("submitted_at").groupby("student_id").tail(1)
            late = int(latest["late"].fillna(False).astype(bool).sum())
        hours: list[float] = []
        if due is not None and len(mine):
            times = pd.to_datetime(mine["submitted_at"], utc=True, format="ISO8601").dt.tz_localize(None)
            hours = [float(h) for h in ((times - pd.Timestamp(due)).dt.total_seconds() / 3600.0)]
        graded = needs_manual = 0
        scores: list[float] = []
        if long is not None:
            g = long[(long["assignment"] == name) & long["submitted"]]
            needs_manual = int(g["needs_manual_grade"].sum())
            graded = int(len(g) - needs_manual)
            scores = [float(x) for x in g["score"]]
            if not submitted:  # grades came in without our exchange (e.g. nbgrader's own): count them
                submitted = int(len(g))
                grace = grades.policy.grace_minutes
                late = int((g["minutes_late"] > grace).sum())
        stats.append(AssignmentStats(name=name, title=title, due=due, max_score=max_score, released=name in released,
                                     submitted=submitted, graded=graded, needs_manual=needs_manual, late=late,
                                     scores=scores, submission_hours=hours))
    students = int(len(grades.students)) if grades is not None else int(subs["student_id"].nunique())
    return Overview(course_id=course.id, title=course.title, students=students, assignments=stats,
                    queue=queue or {}, dead_jobs=dead_jobs or [], sync=sync or {}, sync_failed=sync_failed or [],
                    problems=problems or [])
