"""Grades into the outbox: what changed in the gradebook since the last sync becomes a new grade.

The autograder (or any code that produces a grade) can call `outbox.enqueue` directly with the
moment the grade was produced. For grades changed elsewhere (the formgrader writes nbgrader's
gradebook directly), `enqueue_changes` compares a gradebook snapshot with the newest score per
student and assignment in the outbox and records each difference, stamped `now`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from .outbox import Grade, InvalidScore, enqueue, last_scores


def enqueue_changes(s: Session, course_id: str, long, now: dt.datetime, titles: dict[str, str] | None = None) -> int:
    """`long` is the export's long table (`coursehub.grading.export.Grades.long`). Returns rows queued."""
    last = last_scores(s, course_id)
    queued = 0
    submitted = long[long["submitted"]]
    for r in submitted.itertuples(index=False):
        if not r.max_score or r.max_score <= 0:
            continue
        score = round(float(r.score), 6)
        if last.get((r.assignment, r.student_id)) == (score, float(r.max_score)):
            continue
        grading = "PendingManual" if r.needs_manual_grade else "FullyGraded"
        try:
            enqueue(s, Grade(course_id=course_id, assignment=r.assignment, student=r.student_id, score_given=score,
                             score_maximum=float(r.max_score), produced_at=now,
                             label=(titles or {}).get(r.assignment, r.assignment), grading_progress=grading))
        except InvalidScore:
            continue
        queued += 1
    return queued
