"""Released feedback never shows hidden tests (nbgrader#1363) unless the course opts in: real
nbgrader feedback HTML (its `feedback` template) with a failing hidden test, through the exchange core."""

from __future__ import annotations

import io
import tarfile

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from support.exchange import OTHER, make_courses, make_notebook
from traitlets.config import Config

from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.storage import BlobStore
from coursehub.platform.courses import load_catalog

HIDDEN = "assert squares(10)[-1] == 100, 'hidden check of the last square'"
VISIBLE = "assert squares(1) == [1]"
SOURCE = f"{VISIBLE}\n### BEGIN HIDDEN TESTS\n{HIDDEN}\nassert len(squares(7)) == 7\n### END HIDDEN TESTS"
TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mAssertionError\x1b[0m                            Traceback (most recent call last)",
    f"Cell \x1b[0;32mIn[2], line 3\x1b[0m\n\x1b[1;32m      1\x1b[0m {VISIBLE}\n"
    f"\x1b[0;32m----> 3\x1b[0m {HIDDEN}\n",
    "\x1b[0;31mAssertionError\x1b[0m: hidden check of the last square",
]


def feedback_html() -> str:
    """What nbgrader's GenerateFeedback writes for an autograded notebook (hidden tests restored)."""
    import os

    import nbgrader

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def squares(n):\n    return list(range(n))"),
        nbformat.v4.new_code_cell(SOURCE, outputs=[nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="hidden check of the last square", traceback=TRACEBACK)]),
    ]
    nb.cells[1].metadata["nbgrader"] = {"grade": True, "grade_id": "t1", "points": 2, "solution": False,
                                        "locked": True, "schema_version": 3, "score": 0}
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions",
                                                           "formgrader", "templates")]
    c.HTMLExporter.extra_template_paths = [os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions",
                                                        "formgrader", "static", "node_modules", "bootstrap", "dist",
                                                        "css")]
    resources = {"nbgrader": {"notebook": "p1", "score": 0, "max_score": 2, "late_penalty": 0}}
    body, _ = HTMLExporter(config=c).from_notebook_node(nb, resources=resources)
    return body


def test_the_fixture_is_realistic():
    page = feedback_html()
    assert "BEGIN HIDDEN TESTS" in page and "hidden check of the last square" in page  # what #1363 is about


def test_strip_removes_the_region_and_quoting_traceback_lines():
    from coursehub.grading.service.hidden import strip_hidden_tests

    page, n = strip_hidden_tests(feedback_html())
    assert n == 2
    assert "HIDDEN TESTS" not in page
    assert "squares(10)" not in page and "squares(7)" not in page
    assert "squares(1)" in page  # the visible test stays
    assert "AssertionError" in page  # the student still sees that a test failed
    assert page.count("<pre") == page.count("</pre>")
    assert page.count("<span") == page.count("</span>")


@pytest.fixture
def core(tmp_path):
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import ExchangeCore

    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    yield ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits())
    engine.dispose()


def _release_and_fetch(core) -> str:
    from coursehub.grading.service.core import Caller

    prof = Caller("prof2", {OTHER: frozenset({"instructor"})})
    bob = Caller("bob", {OTHER: frozenset({"student"})})
    core.release(prof, OTHER, "hw1", pack({"p1.ipynb": make_notebook().encode()}), force=False)
    sub = core.submit(bob, OTHER, "hw1", pack({"p1.ipynb": make_notebook("mine").encode()}))
    core.release_feedback(prof, OTHER, "hw1", "bob", sub["timestamp"], pack({"p1.html": feedback_html().encode()}))
    with tarfile.open(fileobj=io.BytesIO(core.feedback_archive(bob, OTHER, "hw1")), mode="r:") as tar:
        member = next(m for m in tar if m.name.endswith("/p1.html"))
        return tar.extractfile(member).read().decode()


def test_released_feedback_does_not_contain_hidden_tests(core):
    page = _release_and_fetch(core)
    assert HIDDEN not in page and "squares(10)" not in page and "HIDDEN TESTS" not in page
    assert "squares(1)" in page


def test_a_course_can_opt_in_to_show_them(core):
    catalog = core.catalog()
    opted = catalog.get(OTHER).model_copy(update={"show_hidden_tests_in_feedback": True})
    core.catalog = lambda: type("C", (), {"get": staticmethod(lambda cid: opted if cid == OTHER else None)})()
    page = _release_and_fetch(core)
    assert "squares(10)" in page and "BEGIN HIDDEN TESTS" in page
