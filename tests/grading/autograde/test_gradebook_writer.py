"""`GradebookWriter` writes a submission in one transaction (issue 17) and still gives exactly what
nbgrader's own SaveAutoGrades + AssignLatePenalties give, late penalties included (a penalty reads
the notebook's score, a SQL column property, after the grades are written)."""

from __future__ import annotations

import re
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


@pytest.fixture
def shared_names(tmp_path):
    """A gradebook where one notebook has a grade, a solution and a task cell all named "x", a task
    cell "t" alone, and two students who submitted it."""
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, "c") as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("x", "nb", "a", max_score=2, cell_type="code")
        gb.add_solution_cell("x", "nb", "a")
        gb.add_task_cell("x", "nb", "a", max_score=3, cell_type="markdown")
        gb.add_task_cell("t", "nb", "a", max_score=1, cell_type="markdown")
        for student in ("s1", "s2"):
            gb.add_student(student)
            gb.add_submission("a", student)
    gb = Gradebook(url, "c")
    yield gb
    gb.close()


def test_one_notebooks_rows_are_the_rows_nbgraders_lookups_find(shared_names):
    """The prefetched lookups answer exactly what nbgrader's find_grade / find_comment answer, with
    the same precedence between cells of the same name, and leave everything else to them."""
    from coursehub.grading.autograde.gradebook import _NotebookRows

    gb = shared_names
    rows = _NotebookRows(gb, "nb", "a", "s1")
    for cell in ("x", "t"):
        assert rows.find_grade(cell, "nb", "a", "s1") is gb.find_grade(cell, "nb", "a", "s1")
        assert rows.find_comment(cell, "nb", "a", "s1") is gb.find_comment(cell, "nb", "a", "s1")
    assert rows.find_grade("x", "nb", "a", "s1").cell.type == "GradeCell"  # not the task cell's
    assert rows.find_comment("x", "nb", "a", "s1").cell.type == "SolutionCell"
    # another student's rows are not the prefetched ones
    assert rows.find_grade("x", "nb", "a", "s2") is gb.find_grade("x", "nb", "a", "s2")
    assert rows.find_grade("x", "nb", "a", "s2") is not rows.find_grade("x", "nb", "a", "s1")
    with pytest.raises(MissingEntry):
        rows.find_grade("nope", "nb", "a", "s1")
    with pytest.raises(MissingEntry):
        rows.find_comment("nope", "nb", "a", "s1")
    missing = _NotebookRows(gb, "nb", "a", "nobody")  # nbgrader raises at the lookup, not before
    with pytest.raises(MissingEntry):
        missing.find_grade("x", "nb", "a", "nobody")


def test_saving_a_notebook_does_not_query_per_cell(demo_course, tmp_path):
    """nbgrader's SaveAutoGrades looks up every grade and comment with its own seven-table join;
    the writer reads a notebook's grades and comments in two queries, however many cells it has."""
    from sqlalchemy import event

    course, url = _course(demo_course, tmp_path / "course")
    nbs = _finished(course)
    result = SubmissionResult("s1", "ps1", "graded", [
        NotebookResult(name, "graded", "", nbformat.writes(nb)) for name, nb in nbs.items()])
    per_cell_lookups: list[str] = []
    with GradebookWriter(url, "demo-101", None, _config()) as writer:
        def count(conn, cursor, statement, *args):
            sql = " ".join(statement.split())
            if re.search(r"\bFROM (grade|comment) JOIN .* JOIN student\b", sql):
                per_cell_lookups.append(sql)  # find_grade / find_comment: one cell of one student

        event.listen(writer.gb.db.get_bind(), "before_cursor_execute", count)
        writer.apply(result, LATE)
    graded_cells = sum(1 for nb in nbs.values() for c in nb.cells
                       if c.metadata.get("nbgrader", {}).get("grade") or c.metadata.get("nbgrader", {}).get("solution"))
    assert graded_cells >= 6
    assert per_cell_lookups == []
    with Gradebook(url, "demo-101") as gb:  # and the grades were written
        assert gb.find_submission("ps1", "s1").score > 0
