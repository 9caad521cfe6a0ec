"""What the student course page shows: one row per assignment, only the caller's own data.

Blocking (database and gradebook reads): the handler runs `student_view` in the service's pool.
Every part that is missing (no gradebook, no LMS tables) leaves its column empty, never an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

#: What each status is called on the page, and the CSS class it gets.
STATUSES = {
    "unreleased": "Not released yet", "not_fetched": "Not fetched", "fetched": "Fetched",
    "submitted": "Submitted", "graded": "Graded", "feedback": "Feedback ready",
}
#: The LMS outbox's row status as a student reads it.
LMS_TEXT = {"sent": "In the LMS", "pending": "Waiting to be sent to the LMS",
            "failed": "Not in the LMS yet (your instructor has been told)"}


@dataclass
class AssignmentRow:
    id: str
    title: str
    due: dt.datetime | None
    time_left: str
    status: str
    submitted_at: dt.datetime | None = None
    late: bool = False
    late_by: str = ""
    score: float | None = None
    max_score: float | None = None
    lms: str = ""

    @property
    def status_text(self) -> str:
        return STATUSES[self.status]


@dataclass
class StudentView:
    course_id: str
    title: str
    student: str
    late_policy: str
    now: dt.datetime
    rows: list[AssignmentRow] = field(default_factory=list)


def duration(seconds: float) -> str:
    """'2 days 3 h', '3 h 20 min', '5 min': the two largest units that matter to a student."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


def time_left(due: dt.datetime | None, now: dt.datetime) -> str:
    if due is None:
        return "No deadline"
    seconds = (due - now).total_seconds()
    return f"{duration(seconds)} left" if seconds > 0 else f"Deadline passed {duration(seconds)} ago"


def late_policy_text(policy: Any) -> str:
    """The course's late policy in one sentence (course.yaml `late_policy`)."""
    parts = []
    if policy.grace_minutes:
        parts.append(f"{policy.grace_minutes} minutes of grace after the deadline")
    if policy.penalty_percent_per_day:
        parts.append(f"then −{policy.penalty_percent_per_day:g} % of the points per day (or part of a day) late")
    if policy.max_late_days is not None:
        parts.append(f"more than {policy.max_late_days} day{'s' if policy.max_late_days != 1 else ''} "
                     "late scores zero")
    if not parts:
        return "Late submissions are accepted and marked late; there is no penalty."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def fetched_assignments(core: Any, course_id: str, student: str) -> set[str]:
    """Assignments the student has fetched (the exchange logs each fetch)."""
    from coursehub.grading.models import Event

    with core.sessions() as s:
        return set(s.scalars(select(Event.assignment_id).where(
            Event.course_id == course_id, Event.actor == student, Event.action == "fetched")).all())


def own_grades(settings: Any, course: Any, student: str) -> dict[str, tuple[float, float]]:
    """The student's (score after late penalty, max score) per graded assignment, as the export has them."""
    from coursehub.grading.export.snapshot import GradebookMissing

    from .handlers import load_course_grades

    try:
        long = load_course_grades(settings, course).long
    except GradebookMissing:
        return {}
    mine = long[(long["student_id"] == student) & long["submitted"].astype(bool)]
    return {str(r.assignment): (float(r.score), float(r.max_score)) for r in mine.itertuples()}


def lms_status(settings: Any, course_id: str, student: str) -> dict[str, str]:
    """The newest LMS outbox row's status per assignment (read-only; empty without the LMS tables)."""
    from coursehub.grading.lms.models import ScoreRow
    from coursehub.grading.lms.runtime import outbox_sessions

    try:
        with outbox_sessions(settings)() as s:
            rows = s.execute(select(ScoreRow.assignment, ScoreRow.status).where(
                ScoreRow.course_id == course_id, ScoreRow.student == student).order_by(ScoreRow.id)).all()
    except (OperationalError, ProgrammingError):
        return {}
    return {a: status for a, status in rows}  # the last (newest) row wins


def student_view(settings: Any, core: Any, caller: Any, course: Any, now: dt.datetime | None = None) -> StudentView:
    """The caller's own view of `course` (callers are members; staff get the page's note instead)."""
    now = now or core.clock()
    released = {r["assignment_id"] for r in core.releases(caller, course.id)}
    subs: dict[str, dict] = {}
    feedback: set[str] = set()
    for r in core.submissions(caller, course.id, mine=True):
        subs[r["assignment_id"]] = r  # ordered by time: the latest stays
        if r.get("feedback"):
            feedback.add(r["assignment_id"])
    fetched = fetched_assignments(core, course.id, caller.name)
    grades = own_grades(settings, course, caller.name)
    lms = lms_status(settings, course.id, caller.name)
    ids = [a.id for a in course.assignments] + sorted(released - {a.id for a in course.assignments})
    view = StudentView(course.id, course.title, caller.name, late_policy_text(course.late_policy), now)
    for aid in ids:
        spec = course.assignment(aid)
        due = course.due_for(aid, caller.name)
        sub = subs.get(aid)
        if aid in feedback:
            status = "feedback"
        elif aid in grades and sub:
            status = "graded"
        elif sub:
            status = "submitted"
        elif aid in fetched:
            status = "fetched"
        else:
            status = "not_fetched" if aid in released else "unreleased"
        row = AssignmentRow(aid, (spec.title if spec else "") or aid, due, time_left(due, now), status)
        if sub:
            row.submitted_at = dt.datetime.fromisoformat(sub["submitted_at"])
            row.late = bool(sub["late"])
            row.late_by = duration(sub["seconds_late"]) if row.late else ""
        if status == "feedback" and aid in grades:  # the score only once feedback is released
            row.score, row.max_score = grades[aid]
        row.lms = LMS_TEXT.get(lms.get(aid, ""), "")
        view.rows.append(row)
    return view
