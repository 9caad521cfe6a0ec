"""What the dashboard shows, computed from plain inputs (no web server, no database here).

Inputs: the gradebook snapshot (`coursehub.grading.export.Grades`), the exchange's releases and
submissions, the grading queue's counts and dead jobs, the LMS outbox's counts, failed rows and the
newest row's status per student and assignment.

"Late" is the export's rule (`grading/export/late.py`: `seconds_late` then `late_mask`): from the
gradebook where a submission was graded (the one the export penalizes), else from the exchange's
latest submission against the student's current deadline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from coursehub.grading.envparity import short


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
class Cell:
    """One student's state in one assignment."""

    score: float | None = None
    max_score: float = 0.0
    submitted: bool = False
    late: bool = False
    sync: str = ""  # the newest LMS outbox row's status ("" when nothing was queued)
    environment: str = ""  # the environment the grade was made in (12 hex of its lock, or "default")


@dataclass
class StudentLine:
    student_id: str
    name: str
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Overview:
    course_id: str
    title: str
    students: int
    assignments: list[AssignmentStats]
    queue: dict[str, int] = field(default_factory=dict)
    dead_jobs: list[dict] = field(default_factory=list)
    #: submissions not graded for an environment mismatch (newest job), for "Grade anyway"
    mismatched: list[dict] = field(default_factory=list)
    sync: dict[str, int] = field(default_factory=dict)
    sync_failed: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    table: list[StudentLine] = field(default_factory=list)


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
                   problems: list[str] | None = None,
                   sync_status: dict[tuple[str, str], str] | None = None,
                   environments: dict[tuple[str, str], str] | None = None,
                   mismatched: list[dict] | None = None) -> Overview:
    """`course` is a coursehub Course; `grades` may be None when no gradebook exists yet;
    `sync_status` maps (student, assignment) to the newest LMS outbox row's status."""
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
    late_by = late_flags(course, long, grades.policy if grades is not None else course.late_policy, subs)
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
        late = sum(1 for (_student, aid), flag in late_by.items() if aid == name and flag)
        stats.append(AssignmentStats(name=name, title=title, due=due, max_score=max_score, released=name in released,
                                     submitted=submitted, graded=graded, needs_manual=needs_manual, late=late,
                                     scores=scores, submission_hours=hours))
    table = student_table(grades, subs, stats, late_by, sync_status or {})
    lines = {line.student_id: line for line in table}
    for (sid, aid), env in (environments or {}).items():  # envparity.graded_environments
        cell = lines[sid].cells.get(aid) if sid in lines else None
        if cell is not None:
            cell.environment = short(env)
    students = len(table)
    return Overview(course_id=course.id, title=course.title, students=students, assignments=stats,
                    queue=queue or {}, dead_jobs=dead_jobs or [], mismatched=mismatched or [], sync=sync or {},
                    sync_failed=sync_failed or [],
                    problems=problems or [], table=table)


def late_flags(course: Any, long: pd.DataFrame | None, policy: Any, subs: pd.DataFrame) -> dict[tuple[str, str], bool]:
    """(student, assignment) -> late, for everyone who submitted: the export's rule on the graded
    submission, else on the exchange's latest submission against the student's deadline today."""
    from coursehub.grading.export.late import late_mask, seconds_late

    out: dict[tuple[str, str], bool] = {}
    if len(subs):
        latest = subs.sort_values("submitted_at").groupby(["assignment_id", "student_id"]).tail(1)
        at = pd.to_datetime(latest["submitted_at"], utc=True, format="ISO8601").dt.tz_localize(None)
        due = pd.Series([_naive_utc(course.due_for(a, s)) for a, s in zip(latest["assignment_id"],
                                                                            latest["student_id"], strict=True)],
                        index=latest.index, dtype="datetime64[us]")
        flags = late_mask(seconds_late(at.astype("datetime64[us]"), due), course.late_policy)
        out.update({(s, a): bool(f) for s, a, f in zip(latest["student_id"], latest["assignment_id"], flags,
                                                       strict=True)})
    if long is not None and len(long):
        g = long[long["submitted"].astype(bool)]
        flags = late_mask(seconds_late(g["timestamp"], g["due"]), policy)
        out.update({(s, a): bool(f) for s, a, f in zip(g["student_id"], g["assignment"], flags, strict=True)})
    return out


def _name(row: Any) -> str:
    parts = [str(p) for p in (row.get("first_name"), row.get("last_name")) if isinstance(p, str) and p.strip()]
    return " ".join(parts)


def student_table(grades: Any | None, subs: pd.DataFrame, stats: list[AssignmentStats],
                  late_by: dict[tuple[str, str], bool], sync_status: dict[tuple[str, str], str]) -> list[StudentLine]:
    """One line per student (the gradebook's, then anyone who only submitted so far), ordered by id."""
    lines: dict[str, StudentLine] = {}
    if grades is not None:
        for row in grades.students.to_dict("records"):
            sid = str(row["student_id"])
            lines[sid] = StudentLine(sid, _name(row))
    for sid in sorted(set(subs["student_id"].astype(str)) - set(lines)):
        lines[sid] = StudentLine(sid, "")
    maxima = {a.name: a.max_score for a in stats}
    for line in lines.values():
        for a in stats:
            line.cells[a.name] = Cell(max_score=maxima[a.name])
    if grades is not None:
        g = grades.long[grades.long["submitted"].astype(bool)]
        for sid, aid, score, top in zip(g["student_id"], g["assignment"], g["score"], g["max_score"], strict=True):
            cell = lines[str(sid)].cells.get(aid)
            if cell is not None:
                cell.score, cell.max_score, cell.submitted = float(score), float(top) or cell.max_score, True
    for (sid, aid), flag in late_by.items():
        cell = lines.get(str(sid), StudentLine("", "")).cells.get(aid)
        if cell is not None:
            cell.submitted, cell.late = True, flag
    for (sid, aid), status in sync_status.items():
        cell = lines.get(str(sid), StudentLine("", "")).cells.get(aid)
        if cell is not None:
            cell.sync = status
    return sorted(lines.values(), key=lambda line: line.student_id)
