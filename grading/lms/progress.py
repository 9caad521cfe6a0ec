"""Honest progress in the LMS: what a student's column says between submitting and the final grade.

- a submission (the exchange stored it): `Submitted` / `Pending`, no score, stamped with the
  submission time, so the LMS shows "submitted" right away;
- autograded, manual grading still open (`needs_manual_grade`): `Submitted` / `PendingManual` with
  the autograded score;
- autograded and every manual grade given: `Completed` / `FullyGraded`.

A grade from the gradebook that belongs to an older submission than the newest *on-time* one is
not sent: that submission will be collected and graded (whatever the course's collect policy), and
the LMS keeps saying `Pending` until it is. A newer *late* submission does not hold a grade back,
as a course that collects the latest submission before the deadline never grades it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from ..models import Submission
from .models import ScoreRow
from .outbox import LIVE, Grade, enqueue

#: A gradebook timestamp this close to the submission's is the same submission (string round trips).
SAME_SUBMISSION = dt.timedelta(seconds=1)


def progress_for(needs_manual_grade: bool) -> tuple[str, str]:
    """(activityProgress, gradingProgress) of an autograded submission."""
    return ("Submitted", "PendingManual") if needs_manual_grade else ("Completed", "FullyGraded")


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def newest_submissions(s: Session, course_id: str, on_time_only: bool = False) -> dict[tuple[str, str], dt.datetime]:
    """{(assignment, student): time of the newest stored (on-time) submission} (naive UTC); empty
    when the exchange's table is not in this database (an LMS-only database in tests and tools)."""
    q = (select(Submission.assignment_id, Submission.student_id, func.max(Submission.submitted_at))
         .where(Submission.course_id == course_id))
    if on_time_only:
        q = q.where(Submission.late.is_(False))
    try:
        rows = s.execute(q.group_by(Submission.assignment_id, Submission.student_id)).all()
    except (OperationalError, ProgrammingError):
        s.rollback()
        return {}
    return {(a, st): _naive(t) for a, st, t in rows if t is not None}


def is_stale(graded_timestamp: dt.datetime | None, newest: dt.datetime | None) -> bool:
    """True when the graded submission is older than the newest one stored."""
    if newest is None or graded_timestamp is None:
        return False
    return _naive(graded_timestamp) + SAME_SUBMISSION < newest


def submission_progress(s: Session, course_id: str, points: dict[str, float],
                        labels: dict[str, str] | None = None) -> int:
    """Queue `Submitted`/`Pending` for every newest submission the outbox has not recorded anything
    as new for. `points`: the assignment's maximum (course.yaml); returns rows queued."""
    newest = newest_submissions(s, course_id)
    known = dict(((a, st), t) for a, st, t in s.execute(
        select(ScoreRow.assignment, ScoreRow.student, func.max(ScoreRow.produced_at))
        .where(ScoreRow.course_id == course_id, ScoreRow.status.in_(LIVE + ("superseded",)))
        .group_by(ScoreRow.assignment, ScoreRow.student)).all())
    queued = 0
    for (assignment, student), at in sorted(newest.items()):
        last = known.get((assignment, student))
        if last is not None and last >= at:
            continue
        enqueue(s, Grade(course_id=course_id, assignment=assignment, student=student, score_given=None,
                         score_maximum=float(points.get(assignment) or 1.0), produced_at=at,
                         label=(labels or {}).get(assignment, assignment), activity_progress="Submitted",
                         grading_progress="Pending"))
        queued += 1
    return queued
