"""Visible-only grading without a sandbox: what is run, what is reported, and that it is off by default."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbgrader import utils

from coursehub.grading.autograde.sources import SourceIndex
from coursehub.grading.instant import visible
from coursehub.grading.instant.runner import InstantRunner, enabled
from coursehub.grading.instant.store import InstantStore
from coursehub.platform.courses import Course

MIXED = "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 'secret-expected'\n### END HIDDEN TESTS"
HIDDEN_ONLY = '"""Hidden."""\n### BEGIN HIDDEN TESTS\nassert g() == 42\n### END HIDDEN TESTS'


def _locked(name: str, source: str, points: float) -> dict:
    node = nbformat.v4.new_code_cell(source)
    node.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": name,
                                 "points": points}
    return {"cell_type": "code", "locked": True, "checksum": utils.compute_checksum(node), "source": source}


def _index() -> SourceIndex:
    return SourceIndex(
        assignment="ps1",
        cells={"nb": {"answer": {"cell_type": "code", "locked": False, "checksum": "x", "source": "def f(x): ..."},
                      "t-mixed": _locked("t-mixed", MIXED, 2), "t-hidden": _locked("t-hidden", HIDDEN_ONLY, 1),
                      "t-plain": _locked("t-plain", "assert f(0) == 0", 1)}},
        points={"nb": {"t-mixed": 2.0, "t-hidden": 1.0, "t-plain": 1.0}}, kernelspecs={"nb": None},
        tasks={"nb": []})


def test_visible_index_drops_hidden_regions_and_keeps_nbgraders_checksum():
    full = _index()
    vis = visible.visible_index(full)
    assert vis.cells["nb"]["t-mixed"]["source"] == "assert f(1) == 1"
    assert "secret-expected" not in json.dumps(vis.cells)
    assert full.cells["nb"]["t-mixed"]["source"] == MIXED  # the original is untouched
    node = nbformat.v4.new_code_cell("assert f(1) == 1")
    node.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "t-mixed", "points": 2.0}
    assert vis.cells["nb"]["t-mixed"]["checksum"] == utils.compute_checksum(node)
    assert vis.cells["nb"]["t-plain"] == full.cells["nb"]["t-plain"]
    # a test cell made only of hidden tests would pass trivially: it is not reported at all
    assert visible.visible_test_cells(vis) == {"nb": {"t-mixed", "t-plain"}}


def _finished(outputs: dict[str, list]) -> str:
    nb = nbformat.v4.new_notebook()
    for name, outs in outputs.items():
        cell = nbformat.v4.new_code_cell("...")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": name, "points": 2}
        cell.outputs = [nbformat.v4.new_output(**o) for o in outs]
        nb.cells.append(cell)
    return nbformat.writes(nb)


def test_results_report_passing_and_the_errors_last_line():
    finished = _finished({
        "t-mixed": [],
        "t-plain": [{"output_type": "error", "ename": "AssertionError", "evalue": "first\nexpected 3, got 4",
                     "traceback": ["Traceback ...", "AssertionError: expected 3, got 4"]}],
        "t-hidden": [{"output_type": "error", "ename": "NameError", "evalue": "g", "traceback": []}],
    })
    got = visible.results("nb", finished, {"t-mixed", "t-plain"})
    assert [(t.cell_id, t.passed, t.points, t.error) for t in got] == [
        ("t-mixed", True, 2.0, ""), ("t-plain", False, 2.0, "expected 3, got 4")]
    assert visible.summary(got) == "1 of 2 visible tests pass; failing: t-plain."


def test_instant_feedback_is_off_by_default(tmp_path):
    course = Course(id="c1", title="C", assignments=[{"id": "a1"}, {"id": "a2", "instant_feedback": True}])
    assert course.assignment("a1").instant_feedback is False
    assert not enabled(course, "a1") and enabled(course, "a2") and not enabled(course, "nope")
    runner = InstantRunner(InstantStore(tmp_path), lambda cid: tmp_path, lambda slot: pytest.fail("no executor"))
    info = {"id": 7, "course_id": "c1", "assignment_id": "a1", "student_id": "alice"}
    try:
        assert runner.submitted(info, course, lambda: pytest.fail("files are not read")) == {}
    finally:
        runner.close()
    assert InstantStore(tmp_path).read("c1", 7) is None


def test_the_lab_notification_is_short_and_the_details_list_each_visible_test():
    from coursehub.grading.exchange.panel import NOTIFY_CHARS, instant_notice

    assert instant_notice("ps1", {"status": "pending"})["done"] is False
    tests = [{"cell_id": f"test-{i}", "passed": i == 0, "points": 2.0, "error": "" if i == 0 else "AssertionError: no"}
             for i in range(6)]
    record = {"status": "done", "message": visible.summary([visible.CellResult("nb", t["cell_id"], t["passed"], 2.0)
                                                            for t in tests]), "tests": tests}
    notice = instant_notice("ps1", record)
    assert notice["text"] == "Instant feedback on ps1: 1 of 6 visible tests pass; failing: test-1, test-2, test-3 and 2 more."
    assert len(notice["text"]) <= NOTIFY_CHARS and notice["level"] == "warning"
    assert notice["details"][:2] == ["PASS test-0 (2 points)", "FAIL test-1 (2 points): AssertionError: no"]
    assert "not your grade" in notice["details"][-1]
    busy = instant_notice("ps1", {"status": "busy", "message": "Instant feedback is busy right now."})
    assert busy["done"] and busy["level"] == "info" and busy["details"][:-1] == []


def test_the_pool_is_bounded_and_a_newer_submission_replaces_a_waiting_one(tmp_path):
    import threading

    gate = threading.Event()

    class Blocking(InstantRunner):
        def grade(self, info: dict, files: dict) -> dict:
            gate.wait(30)
            return {"tests": [], "message": f"ran {info['id']}"}

    course = Course(id="c1", title="C", assignments=[{"id": "a1", "instant_feedback": True}])
    store = InstantStore(tmp_path)
    runner = Blocking(store, lambda cid: tmp_path, lambda slot: None, workers=1, max_waiting=2)

    def sub(sid: int, student: str) -> dict:
        info = {"id": sid, "course_id": "c1", "assignment_id": "a1", "student_id": student}
        return runner.submitted(info, course, lambda: {})

    try:
        assert sub(1, "alice") == {"instant_feedback": "pending"}  # running (blocked)
        for _ in range(200):  # until the worker has taken it off the waiting line
            if runner._waiting == 0:
                break
            threading.Event().wait(0.01)
        assert sub(2, "bob") == {"instant_feedback": "pending"}
        assert sub(3, "bob") == {"instant_feedback": "pending"}
        assert sub(4, "carol") == {"instant_feedback": "busy"}  # the line is full: answered at once
        assert store.read("c1", 4)["status"] == "busy"
        gate.set()
        runner._pool.shutdown(wait=True)
    finally:
        runner.close()
    assert store.read("c1", 1)["message"] == "ran 1"
    assert store.read("c1", 2)["status"] == "superseded"  # bob's newer submission replaced it
    assert store.read("c1", 3)["status"] == "done" and store.read("c1", 3)["message"] == "ran 3"
