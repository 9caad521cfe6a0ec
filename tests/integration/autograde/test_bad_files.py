"""One bad submission never stops a run: it gets a clear status of its own, the others are graded
(as `nbgrader autograde` does)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import samples
from support.venv import venv_env

from coursehub.grading.sandbox.cleanup import remove_tree


def _deep(top, levels: int) -> None:
    fd = os.open(top, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)


@pytest.fixture
def course(course_copy):
    course = course_copy()
    yield course
    remove_tree(course)  # the 1,500-level tree would break pytest's own (recursive) clean-up of tmp_path


def test_bad_files_get_their_own_status_and_the_run_goes_on(course):
    good = lambda: samples.correct(samples.released(course))  # noqa: E731
    samples.write_submission(course, "good1", good())
    bad = samples.write_submission(course, "not-utf8", good())
    (bad / "part1.ipynb").write_bytes((bad / "part1.ipynb").read_bytes().replace(b'"cells"', b'"c\xffells"', 1))
    bad = samples.write_submission(course, "folder", good())
    (bad / "part1.ipynb").unlink()
    (bad / "part1.ipynb").mkdir()
    (bad / "part1.ipynb" / "x").write_text("x")
    bad = samples.write_submission(course, "not-json", good())
    (bad / "part2.ipynb").write_text("{ this is not a notebook")
    bad = samples.write_submission(course, "bad-metadata", good())
    (bad / "part1.ipynb").write_text('{"cells": 5, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    bad = samples.write_submission(course, "deep", good())
    _deep(bad, 1500)
    linked = samples.write_submission(course, "linker", good())
    (linked / "data.txt").symlink_to("/etc/hostname")
    samples.write_submission(course, "good2", good())

    env = venv_env()
    run = subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(course),
                          "--workers", "2", "--no-progress"], env=env, capture_output=True, text=True)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr  # like nbgrader: something needs the instructor's attention
    assert "Traceback" not in run.stderr, run.stderr
    assert "8 submission(s)" in out
    assert "not-utf8: invalid submission, not graded: part1.ipynb is not UTF-8 text" in out
    assert "folder: invalid submission, not graded: part1.ipynb is a folder, not a notebook" in out
    assert "not-json: invalid submission, not graded: part2.ipynb is not a gradable notebook" in out
    assert "bad-metadata: invalid submission, not graded: part1.ipynb is not a gradable notebook" in out
    assert "deep: invalid submission, not graded: its folders are nested too deeply" in out
    snap = samples.gradebook_snapshot(f"sqlite:///{course / 'gradebook.db'}", "demo-101")
    graded = {k[0] for k in snap}
    assert graded == {"good1", "good2", "linker"}
    for s in graded:
        assert snap[(s, "part1", "test-mean", "grade")][0] == 3.0
    # a symlink in a submission is never followed on the host (it could point at any host file)
    assert not (course / "autograded" / "linker" / "ps1" / "data.txt").exists()
