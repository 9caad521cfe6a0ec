"""The sandbox of a course with its own environment and data: the bubblewrap command line, the
runtime resolved from the catalog, and refusal (never a score) when the environment is not built."""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import pytest
from traitlets.config import Config

from coursehub.grading.autograde.environment import CourseRuntime, EnvironmentNotBuilt, course_runtime
from coursehub.grading.autograde.executors import LocalExecutor
from coursehub.grading.autograde.grader import SubmissionJob
from coursehub.grading.sandbox import bwrap
from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.platform import environments as envs
from coursehub.platform.settings import load_settings


def _binds(cmd: list[str]) -> list[tuple[str, str, str]]:
    return [(a, cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]


def _fake_env(root: Path) -> Path:
    """A venv-shaped folder whose pyvenv.cfg points at a base interpreter elsewhere."""
    env = root / "envs" / "c-1-0123456789ab"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    base = root / "base" / "bin"
    base.mkdir(parents=True)
    (env / "pyvenv.cfg").write_text(f"home = {base}\ninclude-system-site-packages = false\n")
    return env / "bin" / "python"


def test_a_course_environment_replaces_coursehubs_in_the_sandbox(tmp_path):
    python = _fake_env(tmp_path)
    spec = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=61005, python=python,
                             runtime=envs.runtime_paths(python))
    cmd = bwrap.sandbox_command(spec)
    ro = {src for kind, src, dst in _binds(cmd) if kind == "--ro-bind" and src == dst}
    assert {str(python.parent.parent), str(tmp_path / "base"), "/usr"} <= ro
    assert str(Path(sys.prefix).resolve()) not in ro  # coursehub's own .venv is not visible
    path = cmd[cmd.index("PATH", cmd.index("--clearenv")) + 1]
    assert path.split(":")[0] == str(python.parent)  # the course's bin first
    assert cmd[-3:] == [str(python), "-s", bwrap.ZYGOTE_PATH]


def test_datasets_are_bound_read_only_at_their_mount_path(tmp_path):
    data = tmp_path / "census"
    data.mkdir()
    spec = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=61005,
                             data=[(data, PurePosixPath("/srv/data/census"))])
    cmd = bwrap.sandbox_command(spec)
    assert ("--ro-bind", str(data), "/srv/data/census") in _binds(cmd)
    assert ("--bind", str(data), "/srv/data/census") not in _binds(cmd)
    assert "/srv/data" in [cmd[i + 1] for i, a in enumerate(cmd) if a == "--dir"]


def _course(root: Path, *, spec: bool, data: bool = False) -> Path:
    folder = root / "courses" / "c-1"
    folder.mkdir(parents=True)
    text = "id: c-1\ntitle: C\n"
    if data:
        (folder / "data" / "census").mkdir(parents=True)
        text += "data:\n  - name: census\n    path: data/census\n"
    (folder / "course.yaml").write_text(text)
    if spec:
        (folder / "environment").mkdir()
        (folder / "environment" / "requirements.txt").write_text("roman\n")
        (folder / "environment" / envs.LOCK_FILE).write_text("# python: 3.11\n# spec: requirements.txt x\nroman==1\n")
    return folder


def test_runtime_of_a_course_without_environment_is_the_default_plus_its_data(tmp_path):
    folder = _course(tmp_path, spec=False, data=True)
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    runtime = course_runtime(settings, "c-1")
    assert runtime.python is None and runtime.runtime is None
    assert runtime.data == (((folder / "data" / "census").resolve(), PurePosixPath("/srv/data/census")),)
    assert course_runtime(settings, "not-in-catalog") == CourseRuntime()
    assert course_runtime(settings, "") == CourseRuntime()


def test_unbuilt_environment_is_refused_with_the_command_to_run(tmp_path):
    _course(tmp_path, spec=True)
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    with pytest.raises(EnvironmentNotBuilt, match="coursehub env build c-1"):
        course_runtime(settings, "c-1")
    executor = LocalExecutor(KernelLimits(), settings=settings)
    config = Config()
    config.CourseDirectory.course_id = "c-1"
    job = SubmissionJob(student="s", assignment="a", notebooks={"nb": "{}"})
    result = executor.grade(job, index=None, config=config)  # refused before any sandbox starts
    assert result.status == "failed" and result.notebooks == []
    assert "coursehub env build c-1" in result.error and "not a score" in result.error
    assert executor._grader is None


def test_built_environment_gives_its_python(tmp_path):
    _course(tmp_path, spec=True)
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    lock = envs.read_lock(tmp_path / "courses" / "c-1" / "environment" / envs.LOCK_FILE)
    env = envs.env_dir(tmp_path / "state", "c-1", lock)
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    (env / envs.MARKER_FILE).write_text("{}")
    runtime = course_runtime(settings, "c-1")
    assert runtime.python == env / "bin" / "python"
    assert runtime.slot_kwargs()["runtime"][0] == env


def test_the_queue_workers_local_executor_resolves_course_environments(tmp_path):
    from coursehub.grading.autograde.executors import make_executor

    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    executor = make_executor(settings)
    assert isinstance(executor, LocalExecutor) and executor.settings is settings
