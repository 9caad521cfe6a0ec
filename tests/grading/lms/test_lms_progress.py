"""Honest progress: Submitted/Pending after a submission, PendingManual while manual grading is
open, FullyGraded only when it is done; a grade of an older submission is never sent over a newer one."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import select

from coursehub.grading.lms.gradesync import enqueue_changes
from coursehub.grading.lms.models import ScoreRow
from coursehub.grading.lms.outbox import Sender
from coursehub.grading.lms.progress import submission_progress
from coursehub.grading.models import Base as ExchangeBase
from coursehub.grading.models import Submission

UTC = dt.UTC
T_SUB = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def exchange(sessions):
    ExchangeBase.metadata.create_all(sessions.kw["bind"])
    return sessions


def submit(sessions, student: str, at: dt.datetime, assignment: str = "ps1") -> None:
    with sessions() as s:
        s.add(Submission(course_id="c1", assignment_id=assignment, student_id=student, submitted_at=at,
                         timestamp=at.strftime("%Y-%m-%d %H:%M:%S.%f %Z"), upload_id=f"u{at.timestamp()}",
                         blob_path="x", sha256="0" * 64, size=1, notebooks=["p1"], secret="s"))
        s.commit()


def long_table(score: float, manual: bool, graded_at: dt.datetime = T_SUB) -> pd.DataFrame:
    return pd.DataFrame([{"assignment": "ps1", "student_id": "ann", "submitted": True, "score": score,
                          "max_score": 10.0, "needs_manual_grade": manual,
                          "timestamp": pd.Timestamp(graded_at.replace(tzinfo=None))}])


def newest(sessions) -> ScoreRow:
    with sessions() as s:
        return s.scalars(select(ScoreRow).order_by(ScoreRow.produced_at.desc(), ScoreRow.id.desc())).first()


async def test_progress_from_submission_to_fully_graded(exchange, students, client, clock, lms):
    sessions = exchange
    sender = Sender(sessions, students, client, clock=clock)
    submit(sessions, "ann", T_SUB)
    with sessions() as s:
        assert submission_progress(s, "c1", {"ps1": 10.0}) == 1
        assert submission_progress(s, "c1", {"ps1": 10.0}) == 0  # recorded once
    assert await sender.send_due() == {"sent": 1}
    (result,) = lms.results.values()
    assert (result["activityProgress"], result["gradingProgress"]) == ("Submitted", "Pending")
    assert "scoreGiven" not in result and result["timestamp"].startswith("2026-11-20T09:00:00")

    # autograded, a manually graded cell is still open
    with sessions() as s:
        assert enqueue_changes(s, "c1", long_table(6.0, manual=True), dt.datetime(2026, 11, 20, 10, tzinfo=UTC)) == 1
    await sender.send_due()
    (result,) = lms.results.values()
    assert (result["activityProgress"], result["gradingProgress"], result["scoreGiven"]) == (
        "Submitted", "PendingManual", 6.0)

    # the TA grades the open cell and gives it 0 more points: same score, now complete
    with sessions() as s:
        assert enqueue_changes(s, "c1", long_table(6.0, manual=False), dt.datetime(2026, 11, 20, 11, tzinfo=UTC)) == 1
        assert enqueue_changes(s, "c1", long_table(6.0, manual=False), dt.datetime(2026, 11, 20, 12, tzinfo=UTC)) == 0
    await sender.send_due()
    (result,) = lms.results.values()
    assert (result["activityProgress"], result["gradingProgress"], result["scoreGiven"]) == (
        "Completed", "FullyGraded", 6.0)


async def test_a_resubmission_is_pending_until_it_is_graded(exchange, students, client, clock, lms):
    sessions = exchange
    submit(sessions, "ann", T_SUB)
    with sessions() as s:
        enqueue_changes(s, "c1", long_table(6.0, manual=False), dt.datetime(2026, 11, 20, 10, tzinfo=UTC))
    resubmitted = dt.datetime(2026, 11, 20, 13, tzinfo=UTC)
    submit(sessions, "ann", resubmitted)
    with sessions() as s:
        assert submission_progress(s, "c1", {"ps1": 10.0}) == 1
        # the gradebook still holds the first submission's grade: it is not sent again over "Pending"
        assert enqueue_changes(s, "c1", long_table(6.0, manual=False), dt.datetime(2026, 11, 20, 14, tzinfo=UTC)) == 0
    row = newest(sessions)
    assert (row.activity_progress, row.grading_progress, row.score_given) == ("Submitted", "Pending", None)
    with sessions() as s:  # the resubmission is graded
        assert enqueue_changes(s, "c1", long_table(8.0, manual=False, graded_at=resubmitted),
                               dt.datetime(2026, 11, 20, 15, tzinfo=UTC)) == 1
    await Sender(sessions, students, client, clock=clock).send_due()
    (result,) = lms.results.values()
    assert (result["gradingProgress"], result["scoreGiven"]) == ("FullyGraded", 8.0)


async def test_a_late_resubmission_does_not_hold_back_the_grade(exchange, students, client, clock, lms):
    """A course that collects the latest submission before the deadline never grades a late one."""
    sessions = exchange
    submit(sessions, "ann", T_SUB)
    with sessions() as s:
        s.add(Submission(course_id="c1", assignment_id="ps1", student_id="ann",
                         submitted_at=dt.datetime(2026, 11, 21, 9, tzinfo=UTC), timestamp="t", upload_id="late",
                         blob_path="x", sha256="0" * 64, size=1, notebooks=["p1"], secret="s", late=True))
        s.commit()
        assert enqueue_changes(s, "c1", long_table(6.0, manual=False), dt.datetime(2026, 11, 22, tzinfo=UTC)) == 1
