"""What the staff landing page of a course shows: per assignment its release and collect state and
autograde progress, and the course's LMS grade sync, read from the grading database (blocking)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

#: Job states as the page groups them (grading/queue/models.py): leased and applying are running.
JOB_GROUPS = {"queued": "queued", "leased": "running", "applying": "running", "done": "done",
              "dead": "dead", "superseded": "done"}


@dataclass
class StaffRow:
    id: str
    title: str
    due: dt.datetime | None
    released_at: dt.datetime | None = None
    collected_at: dt.datetime | None = None
    submitters: int = 0
    jobs: dict[str, int] = field(default_factory=lambda: {"queued": 0, "running": 0, "done": 0, "dead": 0})


@dataclass
class StaffView:
    course_id: str
    title: str
    rows: list[StaffRow] = field(default_factory=list)
    sync: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def staff_view(settings: Any, core: Any, caller: Any, course: Any) -> StaffView:
    """The course's state for its instructors and TAs (the caller is staff: checked by the handler)."""
    from coursehub.grading.models import Event, Submission

    view = StaffView(course.id, course.title)
    released = {r["assignment_id"]: _when(r["released_at"]) for r in core.releases(caller, course.id)}
    with core.sessions() as s:
        collected = dict(s.execute(select(Event.assignment_id, func.max(Event.at)).where(
            Event.course_id == course.id, Event.action == "collected").group_by(Event.assignment_id)).all())
        submitters = dict(s.execute(select(Submission.assignment_id, func.count(func.distinct(Submission.student_id)))
                                    .where(Submission.course_id == course.id)
                                    .group_by(Submission.assignment_id)).all())
    ids = [a.id for a in course.assignments] + sorted(set(released) - {a.id for a in course.assignments})
    rows = {}
    for aid in ids:
        spec = course.assignment(aid)
        rows[aid] = StaffRow(aid, (spec.title if spec else "") or aid, spec.due if spec else None,
                             released.get(aid), collected.get(aid), int(submitters.get(aid, 0)))
    view.rows = list(rows.values())
    from coursehub.grading.lms.runtime import outbox_sessions

    sessions = outbox_sessions(settings)
    try:
        from coursehub.grading.queue.models import GradingJob

        with sessions() as s:
            counts = s.execute(select(GradingJob.assignment, GradingJob.status, func.count())
                               .where(GradingJob.course_id == course.id)
                               .group_by(GradingJob.assignment, GradingJob.status)).all()
        for aid, status, n in counts:
            row = rows.get(aid)
            group = JOB_GROUPS.get(status)
            if row is not None and group:
                row.jobs[group] += int(n)
    except (OperationalError, ProgrammingError):
        view.problems.append("The grading queue is not set up in this database (run: coursehub grading-db upgrade).")
    try:
        from coursehub.grading.lms.outbox import status_counts

        with sessions() as s:
            view.sync = status_counts(s, course.id)
    except (OperationalError, ProgrammingError):
        view.problems.append("The LMS grade sync tables are missing (run: coursehub grading-db upgrade).")
    return view
