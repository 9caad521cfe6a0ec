"""nbgrader's sanitize steps, fed from a SourceIndex, restore what students must not change."""

from __future__ import annotations

import nbformat
import pytest
from nbgrader.api import MissingEntry
from support import samples

from coursehub.grading.autograde import steps
from coursehub.grading.autograde.course import NbgraderCourse


@pytest.fixture(scope="module")
def index(demo_course):
    return NbgraderCourse(demo_course).source_index("ps1")


def test_edited_test_cells_and_points_are_restored(demo_course, index):
    nbs = samples.edited_tests(samples.released(demo_course))
    test = samples.cell(nbs, "test-mean")
    test.metadata["nbgrader"]["points"] = 99
    res = steps.resources_for("alice", "ps1", "part1", index)
    out = nbformat.reads(steps.sanitize(nbformat.writes(nbs["part1"]), res, NbgraderCourse(demo_course).config), 4)
    restored = samples.cell({"part1": out}, "test-mean")
    assert restored.source == index.cells["part1"]["test-mean"]["source"]
    assert "HIDDEN TESTS" in restored.source  # the hidden tests are back
    assert restored.metadata["nbgrader"]["points"] == 3.0


def test_source_index_answers_like_the_gradebook(demo_course, index):
    with NbgraderCourse(demo_course).gradebook() as gb:
        for nb in gb.find_assignment("ps1").notebooks:
            for cell in nb.source_cells:
                mine = index.find_source_cell(cell.name, nb.name, "ps1")
                assert (mine.source, mine.checksum, mine.locked, mine.cell_type) == (
                    cell.source, cell.checksum, cell.locked, cell.cell_type)
    with pytest.raises(MissingEntry):
        index.find_source_cell("nope", "part1", "ps1")
    assert index.max_score() == 10.0


def test_cell_scores_follow_nbgrader(demo_course):
    nb = samples.released(demo_course)["part1"]
    cell = samples.cell({"p": nb}, "test-squares")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[])]
    scores = steps.cell_scores(nb)
    assert scores["test-squares"] == {"auto_score": 0, "max_score": 2.0}
    assert scores["test-mean"] == {"auto_score": 3.0, "max_score": 3.0}
