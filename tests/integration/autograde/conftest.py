"""Fixtures for the autograde integration tests (real nbgrader, real bubblewrap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test here that grades the demo course (tests/conftest.py's `demo_course`) needs bubblewrap:
    without it the test is skipped before any fixture is made (and fails under CI=true)."""
    if "demo_course" in getattr(item, "fixturenames", ()) and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (scripts/setup --test installs it)")


@pytest.fixture(scope="module")
def alice_course(tmp_path_factory, demo_course):
    """A copy of the demo course, shared by a module's tests, where alice submitted ps1 all
    correct (7 points)."""
    from support import samples

    from coursehub.grading.autograde.course import NbgraderCourse

    root = tmp_path_factory.mktemp("alice") / "course"
    shutil.copytree(demo_course, root)
    samples.write_submission(root, "alice", samples.correct(samples.released(root)))
    return NbgraderCourse(root)


@pytest.fixture
def course_copy(demo_course, tmp_path):
    """A fresh copy of the generated demo course (gradebook + release, no submissions)."""

    def make(name: str = "course") -> Path:
        dest = tmp_path / name
        shutil.copytree(demo_course, dest)
        return dest

    return make


@pytest.fixture(scope="module", autouse=True)
def _no_catalog_course(tmp_path_factory):
    """The test courses here are nbgrader folders named demo-101, not the catalog's demo-101: grade
    them in coursehub's environment (the catalog's course would need its built environment)."""
    import os

    folder = tmp_path_factory.mktemp("settings")
    (folder / "courses").mkdir()
    settings = folder / "settings.yaml"
    settings.write_text(f"courses_dir: {folder / 'courses'}\n")
    old = os.environ.get("COURSEHUB_SETTINGS")
    os.environ["COURSEHUB_SETTINGS"] = str(settings)
    yield settings
    if old is None:
        os.environ.pop("COURSEHUB_SETTINGS", None)
    else:
        os.environ["COURSEHUB_SETTINGS"] = old
