"""Instant feedback runs the visible tests only, in the real sandbox (bubblewrap, nbgrader's steps).

The demo assignment's hidden tests catch what its visible tests let through (mean([]) must raise,
warmest_day must be 7): a submission that passes every visible test but fails hidden ones must show
all visible tests passing, while the full autograde of the same submission scores those cells zero,
and no hidden test's source may appear in what the student gets.
"""

from __future__ import annotations

import json

import nbformat
from support import samples

from coursehub.grading.autograde.executors import LocalExecutor
from coursehub.grading.instant.runner import InstantRunner
from coursehub.grading.instant.store import InstantStore
from coursehub.grading.sandbox.limits import KernelLimits

HIDDEN_SOURCE = ("BEGIN HIDDEN", "mean([5])", "squares(10)", "warmest_day == 7", "squares(-2)")


def _files(nbs) -> dict[str, bytes]:
    return {f"{name}.ipynb": nbformat.writes(nb).encode() for name, nb in nbs.items()}


def test_visible_tests_only_in_the_sandbox(course_copy, tmp_path):
    course = course_copy()
    runner = InstantRunner(InstantStore(tmp_path / "instant"), lambda cid: course,
                           lambda slot: LocalExecutor(KernelLimits(), slot=slot))
    info = {"id": 1, "course_id": "demo-101", "assignment_id": "ps1", "student_id": "alice"}
    try:
        # passes every visible test, fails the hidden ones of test-mean and test-warmest
        partly = runner.grade(info, _files(samples.partly(samples.released(course))))
        by_id = {t["cell_id"]: t for t in partly["tests"]}
        assert set(by_id) == {"test-squares", "test-mean", "test-warmest"}
        assert all(t["passed"] and not t["error"] for t in by_id.values()), partly
        assert (partly["passed"], partly["total"]) == (3, 3)
        assert partly["message"] == "3 of 3 visible tests pass."
        assert by_id["test-mean"]["points"] == 3.0

        # the full autograde of the same submission (hidden tests back in) scores them zero
        full_index, _, ac = runner._index(course, "ps1")
        job = ac.job_from_files("alice", "ps1", full_index, _files(samples.partly(samples.released(course))))
        full = runner._executor().grade(job, full_index, ac.config)
        scores = {k: v["auto_score"] for n in full.notebooks for k, v in n.scores.items()}
        assert scores["test-mean"] == 0 and scores["test-warmest"] == 0 and scores["test-squares"] == 2

        wrong = runner.grade(info, _files(samples.wrong(samples.released(course))))
        failing = {t["cell_id"]: t for t in wrong["tests"] if not t["passed"]}
        assert set(failing) == {"test-squares", "test-mean", "test-warmest"}
        assert failing["test-squares"]["error"].startswith("AssertionError")
        assert wrong["message"] == "0 of 3 visible tests pass; failing: test-squares, test-mean, test-warmest."
        for answer in (partly, wrong):
            text = json.dumps(answer)
            assert not any(h in text for h in HIDDEN_SOURCE), text
    finally:
        runner.close()

