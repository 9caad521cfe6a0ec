"""`GradebookWriter` writes a submission in one transaction (issue 17) and still gives exactly what
nbgrader's own SaveAutoGrades + AssignLatePenalties give, late penalties included (a penalty reads
the notebook's score, a SQL column property, after the grades are written)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from traitlets.config import Config

from coursehub.grading.autograde import steps
from coursehub.grading.autograde.gradebook import GradebookWriter
from coursehub.grading.autograde.grader import NotebookResult, SubmissionResult

LATE = "2026-12-18 12:00:00.000000 UTC"


def _course(demo_course: Path, dest: Path) -> tuple[Path, str]:
    course = shutil.copytree(demo_course, dest)
    url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(url, "demo-101") as gb:
        gb.update_or_create_assignment("ps1", duedate="2026-12-01 00:00:00.000000 UTC")
    return course, url


def _config() -> Config:
    c = Config()
    c.LateSubmissionPlugin.penalty_method = "zero"  # the penalty is the notebook's whole score
    return c


def _finished(course: Path) -> dict[str, nbformat.NotebookNode]:
    from support import samples

    # no outputs: every test cell passes (full marks), unchanged answers get "No response."
    return samples.correct(samples.released(course))


def test_same_grades_and_late_penalties_as_nbgrader(demo_course, tmp_path):
    from support import samples

    ours, ours_url = _course(demo_course, tmp_path / "ours")
    ref, ref_url = _course(demo_course, tmp_path / "ref")
    nbs = _finished(ours)

    with Gradebook(ref_url, "demo-101") as gb:  # nbgrader's way: a connection and commits per cell
        gb.update_or_create_student("s1")
        gb.update_or_create_submission("ps1", "s1", timestamp=LATE)
    for name, nb in _finished(ref).items():
        res = steps.resources_for("s1", "ps1", name)
        res["nbgrader"]["db_url"] = ref_url
        nb, res = SaveAutoGrades(config=_config()).preprocess(nb, res)
        AssignLatePenalties(config=_config()).preprocess(nb, res)

    result = SubmissionResult("s1", "ps1", "graded", [
        NotebookResult(name, "graded", "", nbformat.writes(nb)) for name, nb in nbs.items()])
    with GradebookWriter(ours_url, "demo-101", None, _config()) as writer:
        writer.apply(result, LATE)

    a = samples.gradebook_snapshot(ref_url, "demo-101")
    b = samples.gradebook_snapshot(ours_url, "demo-101")
    penalties = [v[0] for k, v in a.items() if k[3] == "late_penalty"]
    assert penalties and all(p and p > 0 for p in penalties)  # the check below compares real penalties
    assert b == a


def test_a_submission_is_written_whole_or_not_at_all(demo_course, tmp_path):
    course, url = _course(demo_course, tmp_path / "course")
    nbs = _finished(course)
    names = sorted(nbs)
    broken = nbs[names[-1]]
    grade_cell = next(c for c in broken.cells if c.metadata.get("nbgrader", {}).get("grade"))
    grade_cell.metadata.nbgrader["grade_id"] = "not-in-the-gradebook"  # fails after the first notebook
    result = SubmissionResult("s1", "ps1", "graded", [
        NotebookResult(name, "graded", "", nbformat.writes(nbs[name])) for name in names])

    with GradebookWriter(url, "demo-101", None, _config()) as writer:
        with pytest.raises(MissingEntry):
            writer.apply(result, LATE)
        writer.apply(SubmissionResult("s2", "ps1", "graded", [
            NotebookResult(names[0], "graded", "", nbformat.writes(nbs[names[0]]))]), LATE)

    with Gradebook(url, "demo-101") as gb:
        with pytest.raises(MissingEntry):  # nothing of s1: not the student row's submission, no grade
            gb.find_submission("ps1", "s1")
        # the writer is usable after the rollback: the next submission is written
        assert gb.find_submission("ps1", "s2").score > 0
