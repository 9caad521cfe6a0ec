"""nbgrader's sanitize steps, fed from a SourceIndex, restore what students must not change."""

from __future__ import annotations

import json

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


def test_metadata_validation_is_nbgrader_s_with_one_validator_per_schema(demo_course, index):
    """nbgrader reads its metadata schema again for every notebook: the cached validator must still
    be one per schema (not one per notebook, which grew without end in a long-running worker) and
    must refuse exactly what jsonschema refuses."""
    import jsonschema
    from nbgrader.nbgraderformat import MetadataValidator, common

    cache = common.jsonschema
    assert isinstance(cache, steps._CachedJsonschema)
    config = NbgraderCourse(demo_course).config
    nb_json = nbformat.writes(samples.released(demo_course)["part1"])
    for _ in range(5):  # five notebooks: five fresh schema dicts, one validator
        steps.sanitize(nb_json, steps.resources_for("alice", "ps1", "part1", index), config)
    assert len(cache._validators) == 1

    schema = MetadataValidator().schema
    bad = {"grade": True, "solution": False, "locked": False, "grade_id": "x", "points": "many",
           "schema_version": 3}
    with pytest.raises(jsonschema.ValidationError) as real:
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError) as ours:
        cache.validate(bad, dict(schema))
    assert (ours.value.message, list(ours.value.path)) == (real.value.message, list(real.value.path))
    other = {"type": "object", "required": ["only"]}
    with pytest.raises(jsonschema.ValidationError, match="'only' is a required property"):
        cache.validate({}, other)  # another schema gets its own validator
    assert len(cache._validators) == 2
    cache._validators.pop(json.dumps(other, sort_keys=True))
