"""The local autograder grades a course in the course's own environment, with its shared data.

One course (built once per session with real uv: support/course_env.py) needs `roman`, a small package
coursehub's own environment lacks, and reads a read-only dataset from course.yaml `data:`. A correct submission gets
full marks only in the course environment; code importing a package that only coursehub's .venv has
fails as it would for the student; the dataset is readable and never writable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from support import samples
from support.course_env import ENV_COURSE, ENV_EXTRA, ENV_VENV_ONLY
from support.venv import venv_env

from coursehub.grading import envparity
from coursehub.platform import environments as envs

COURSE, EXTRA, VENV_ONLY = ENV_COURSE, ENV_EXTRA, ENV_VENV_ONLY
DATASET = "/srv/data/numbers"


def _nb_cell(source: str, grade_id: str, *, solution: bool = False, points: int = 0) -> nbformat.NotebookNode:
    meta = {"grade": points > 0, "solution": solution, "locked": not solution, "grade_id": grade_id,
            "schema_version": 3}
    if points:
        meta["points"] = points
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def _source_notebook(env: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _nb_cell("### BEGIN SOLUTION\nimport roman\nnumeral = roman.toRoman(14)\n### END SOLUTION\n", "answer",
                 solution=True),
        _nb_cell("assert numeral == 'XIV'\n", "test-answer", points=2),
        _nb_cell(f"import sys\nassert sys.prefix == {str(env)!r}, sys.prefix\n", "test-env", points=1),
        _nb_cell(f"assert open({DATASET + '/values.txt'!r}).read().strip() == '42'\n", "test-read", points=1),
        _nb_cell(f"import os\nassert os.path.isdir({DATASET!r})\ntry:\n    open({DATASET + '/new.txt'!r}, 'w')\n"
                 "    writable = True\nexcept OSError:\n    writable = False\nassert not writable\n",
                 "test-write", points=1),
    ]
    return nb


@pytest.fixture(scope="module")
def course_env(built_course_env, tmp_path_factory):
    """(settings file, catalog course folder, built env): the session's one environment build."""
    if sys.platform != "linux":
        pytest.fail("the sandbox is Linux-only")
    settings = tmp_path_factory.mktemp("course-env-settings") / "settings.yaml"
    settings.write_text(f"courses_dir: {built_course_env.courses_dir}\nstate_dir: {built_course_env.state_dir}\n")
    return settings, built_course_env.folder, built_course_env.env


def _nbgrader_course(root: Path, env: Path) -> Path:
    source = root / "src"
    source.mkdir()
    nbformat.write(_source_notebook(env), source / "roman.ipynb")
    return samples.make_course(root / "course", source, course_id=COURSE)


def _autograde(course: Path, settings: Path, *extra: str) -> subprocess.CompletedProcess:
    env = venv_env()
    return subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(course),
                           "--settings", str(settings), "--workers", "1", "--no-progress", "--force", *extra],
                          env=env, capture_output=True, text=True)


def _scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE) as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions("ps1")}


def _submit(course: Path, student: str, answer: str) -> None:
    nbs = samples.released(course)
    samples.cell(nbs, "answer").source = answer
    samples.write_submission(course, student, nbs)


def test_graded_in_the_course_environment_with_its_data(course_env, tmp_path):
    settings, folder, env = course_env
    course = _nbgrader_course(tmp_path, env)
    _submit(course, "right", "import roman\nnumeral = roman.toRoman(14)\n")
    _submit(course, "venv-only", f"import {VENV_ONLY}\nnumeral = 'XIV'\n")
    _submit(course, "vandal", f"import shutil\ntry:\n    shutil.rmtree({DATASET!r})\nexcept OSError:\n    pass\n"
                              f"try:\n    open({DATASET + '/values.txt'!r}, 'w').write('0')\nexcept OSError:\n"
                              "    pass\nnumeral = 'XIV'\n")
    proc = _autograde(course, settings)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # all 5 points: roman imports, the kernel runs the course's python, the data is read, not written
    assert _scores(course) == {"right": 5.0, "venv-only": 3.0, "vandal": 5.0}
    assert "3 submission(s) recorded no environment" in proc.stdout  # written without the exchange: no parity check
    assert (folder / "data" / "numbers" / "values.txt").read_text() == "42\n"
    assert sorted(p.name for p in (folder / "data" / "numbers").iterdir()) == ["values.txt"]


def test_the_same_answer_fails_in_coursehubs_own_environment(course_env, tmp_path, _no_catalog_course):
    _, _, env = course_env
    course = _nbgrader_course(tmp_path, env)
    _submit(course, "right", "import roman\nnumeral = roman.toRoman(14)\n")
    proc = _autograde(course, _no_catalog_course)  # a catalog without the course: the default environment
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _scores(course) == {"right": 0.0}  # roman is missing, the env and the dataset too


def test_an_unbuilt_environment_is_refused_not_graded(course_env, tmp_path):
    settings, folder, env = course_env
    course = _nbgrader_course(tmp_path, env)
    _submit(course, "right", "import roman\nnumeral = roman.toRoman(14)\n")
    unbuilt = tmp_path / "unbuilt.yaml"
    unbuilt.write_text(f"courses_dir: {folder.parent}\nstate_dir: {tmp_path / 'empty-state'}\n")
    proc = _autograde(course, unbuilt)
    assert proc.returncode == 1
    assert f"coursehub env build {COURSE}" in proc.stderr
    assert _scores(course) == {}
    assert not (course / "autograded").exists()


def test_a_submission_from_another_environment_is_refused_unless_accepted(course_env, tmp_path):
    """Parity: each submission carries the environment its server ran (as `nbgrader collect` leaves
    it); one from coursehub's own environment gets a status, not a grade, until the instructor
    accepts it. The grade records the environment it was made in."""
    settings, folder, env = course_env
    lock_sha = envs.read_lock(folder / "environment" / envs.LOCK_FILE).sha256
    course = _nbgrader_course(tmp_path, env)
    for student, made_in in (("same-env", lock_sha), ("own-env", envs.DEFAULT_ENVIRONMENT)):
        _submit(course, student, "import roman\nnumeral = roman.toRoman(14)\n")
        (course / "submitted" / student / "ps1" / envparity.RECORD_FILE).write_bytes(
            envparity.Recorded(made_in, "python3").to_bytes())
    proc = _autograde(course, settings)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "environment mismatch (not graded)" in proc.stdout
    assert f"own-env: it was made in environment default, the course's is {lock_sha[:12]}" in proc.stdout
    assert _scores(course) == {"same-env": 5.0}  # no grade at all for own-env, not a wrong one
    assert not (course / "autograded" / "own-env").exists()
    assert envparity.graded_environment(course / "autograded" / "same-env" / "ps1") == lock_sha

    proc = _autograde(course, settings, "--student", "own-env", "--accept-environment-mismatch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _scores(course) == {"same-env": 5.0, "own-env": 5.0}
    graded = json.loads((course / "autograded" / "own-env" / "ps1" / envparity.RECORD_FILE).read_text())
    assert graded == {"graded_environment": lock_sha, "environment": "default", "kernel": "python3",
                      "parity": "accepted"}
