"""Grades into the outbox: what changed in the gradebook since the last sync becomes a new grade.

The autograder (or any code that produces a grade) can call `outbox.enqueue` directly with the
moment the grade was produced. For grades changed elsewhere (the formgrader writes nbgrader's
gradebook directly), `enqueue_changes` compares a gradebook snapshot with the newest score per
student and assignment in the outbox and records each difference, stamped `now`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from .outbox import Grade, InvalidScore, enqueue, last_states
from .progress import is_stale, newest_submissions, progress_for


def _timestamp(value) -> dt.datetime | None:  # noqa: ANN001 - a pandas Timestamp, a datetime or NaT
    try:
        if value is None or value != value:  # NaT/NaN
            return None
        return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    except (TypeError, ValueError):
        return None


def enqueue_changes(s: Session, course_id: str, long, now: dt.datetime, titles: dict[str, str] | None = None) -> int:
    """`long` is the export's long table (`coursehub.grading.export.Grades.long`). Returns rows queued.

    A grade is queued when its score, maximum or progress differs from the newest live row (so
    finishing manual grading without changing the score still turns PendingManual into FullyGraded),
    and not at all while a newer on-time submission than the graded one waits (see `progress`)."""
    last = last_states(s, course_id)
    newest = newest_submissions(s, course_id, on_time_only=True)
    queued = 0
    submitted = long[long["submitted"]]
    for r in submitted.itertuples(index=False):
        if not r.max_score or r.max_score <= 0:
            continue
        key = (r.assignment, r.student_id)
        if is_stale(_timestamp(getattr(r, "timestamp", None)), newest.get(key)):
            continue
        score = round(float(r.score), 6)
        activity, grading = progress_for(bool(r.needs_manual_grade))
        if last.get(key) == (score, float(r.max_score), grading):
            continue
        try:
            enqueue(s, Grade(course_id=course_id, assignment=r.assignment, student=r.student_id, score_given=score,
                             score_maximum=float(r.max_score), produced_at=now,
                             label=(titles or {}).get(r.assignment, r.assignment), activity_progress=activity,
                             grading_progress=grading))
        except InvalidScore:
            continue
        queued += 1
    return queued
