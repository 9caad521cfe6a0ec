"""Whether a pool worker starts its second sandbox ahead (`pool.spare_needed`): only while more
submissions are untaken than there are workers, always when the batch size is unknown."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from coursehub.grading.autograde import pool


@pytest.mark.parametrize(("untaken", "workers", "needed"), [
    (-1, 2, True),  # unknown: as a long-running service, always ready
    (0, 2, False),
    (2, 2, False),  # each worker gets about one more: its other slot is ready already
    (3, 2, True),
    (40, 2, True),
    (1, 1, False),
    (2, 1, True),
])
def test_spare_needed_follows_the_untaken_submissions(monkeypatch, untaken, workers, needed):
    monkeypatch.setattr(pool, "_untaken", mp.Value("i", untaken))
    monkeypatch.setattr(pool, "_workers", workers)
    assert pool.spare_needed() is needed


def test_no_count_means_a_spare_is_always_needed(monkeypatch):
    monkeypatch.setattr(pool, "_untaken", None)
    assert pool.spare_needed() is True


def test_taking_a_submission_counts_it_down_and_never_below_zero(monkeypatch):
    untaken = mp.Value("i", 1)
    graded = []

    class FakeGrader:
        def grade(self, job):
            graded.append((job, pool.spare_needed()))
            return job

    monkeypatch.setattr(pool, "_untaken", untaken)
    monkeypatch.setattr(pool, "_workers", 1)
    monkeypatch.setattr(pool, "_grader", FakeGrader())
    assert pool._grade("a") == "a" and untaken.value == 0
    assert pool._grade("b") == "b" and untaken.value == 0
    assert graded == [("a", False), ("b", False)]
