"""The report's figures: nearest-rank percentiles, failures by reason, lost/duplicated accounting."""

from __future__ import annotations

import json

import pytest

from coursehub.loadtest.report import Outcome, account, build, percentile, render, summary, throughput
from coursehub.loadtest.runner import schedule


def test_percentiles_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99), percentile(values, 100)) \
        == (50, 95, 99, 100)
    assert percentile([3.0], 99) == 3.0
    assert percentile([5, 1, 4, 2, 3], 50) == 3  # unsorted input
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_summary_of_nothing() -> None:
    assert summary([]) == {"p50": None, "p95": None, "p99": None, "min": None, "max": None}


def sub(student: str, ack: int | None, attempts: int = 1, reason: str = "") -> Outcome:
    return Outcome(ok=ack is not None, seconds=0.1 if ack else None, reason=reason, student=student,
                   upload_id=f"u-{student}", ack_id=ack, attempts=attempts)


def test_all_kept() -> None:
    outcomes = [sub("a", 1), sub("b", 2)]
    stored = [{"id": 1, "student_id": "a"}, {"id": 2, "student_id": "b"}]
    assert account(outcomes, stored) == {"stored": 2, "acknowledged": 2, "lost": 0, "lost_ids": [],
                                         "duplicated": 0, "stored_unacknowledged": 0}


def test_lost_is_acknowledged_but_not_stored() -> None:
    counts = account([sub("a", 1), sub("b", 2)], [{"id": 1, "student_id": "a"}])
    assert (counts["lost"], counts["lost_ids"], counts["duplicated"]) == (1, [2], 0)


def test_a_retry_stored_twice_is_a_duplicate() -> None:
    stored = [{"id": 1, "student_id": "a"}, {"id": 7, "student_id": "a"}, {"id": 2, "student_id": "b"}]
    counts = account([sub("a", 1, attempts=2), sub("b", 2)], stored)
    assert (counts["lost"], counts["duplicated"], counts["stored_unacknowledged"]) == (0, 1, 0)


def test_stored_after_the_client_gave_up_is_neither() -> None:
    outcomes = [sub("a", None, attempts=3, reason="submit: timed out"), sub("b", 2)]
    stored = [{"id": 5, "student_id": "a"}, {"id": 2, "student_id": "b"}]
    counts = account(outcomes, stored)
    assert (counts["lost"], counts["duplicated"], counts["stored_unacknowledged"]) == (0, 0, 1)


def test_never_attempted_students_have_no_rows_expected() -> None:
    outcomes = [Outcome(ok=False, reason="sign-in failed before the rush")]
    assert account(outcomes, [])["duplicated"] == 0
    assert account(outcomes, [{"id": 9, "student_id": "x"}])["duplicated"] == 1  # nobody uploaded for x


def test_build_counts_failures_by_reason_and_renders() -> None:
    outcomes = [Outcome(ok=True, seconds=s, stages={"launch": s / 10}) for s in (1.0, 2.0, 3.0)]
    outcomes += [Outcome(ok=False, reason="kernel did not answer in time")] * 2
    outcomes += [Outcome(ok=False, reason="launch refused: HTTP 403")]
    report = build("lecture-start", "http://127.0.0.1:8000", 6, 300, outcomes, 12.5)
    assert (report["ok"], report["failed"], report["completed"]) == (3, 3, 6)
    assert report["failures"] == {"kernel did not answer in time": 2, "launch refused: HTTP 403": 1}
    assert report["seconds"]["p50"] == 2.0 and report["seconds"]["p99"] == 3.0
    assert report["stages"]["launch"]["max"] == 0.3
    assert len(report["load_average"]) == 3
    json.dumps(report)
    text = render(report)
    assert "3 ok, 3 failed" in text and "2 x kernel did not answer in time" in text


def test_schedule_spreads_arrivals_over_the_window() -> None:
    assert schedule(1, 300, 10.0) == [10.0]
    assert schedule(3, 0, 10.0) == [10.0, 10.0, 10.0]
    assert schedule(5, 100, 0.0) == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_throughput_is_successes_between_the_first_and_the_last_to_end():
    ends = [Outcome(ok=True, done_at=1.0 + i * 0.005) for i in range(201)]  # 200/s for one second
    failed = [Outcome(ok=False, done_at=0.0), Outcome(ok=False, done_at=9.0)]  # failures do not count
    assert throughput(ends + failed) == pytest.approx(200.0)
    assert throughput([Outcome(ok=True, done_at=1.0)]) is None  # one success: no rate
    assert throughput([Outcome(ok=True, done_at=1.0), Outcome(ok=True, done_at=1.0)]) is None
    assert throughput([Outcome(ok=True)] * 3) is None  # never recorded (built by hand)
    report = build("deadline", "t", 201, 1.0, ends, 1.4)
    assert report["throughput_per_second"] == pytest.approx(200.0)
    assert "throughput: 200.0/s" in render(report)
