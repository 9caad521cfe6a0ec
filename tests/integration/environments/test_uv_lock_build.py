"""Locking and building with the real uv against the package index: one small package (tabulate)
plus the server packages coursehub adds to every course environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coursehub.platform import environments as envs
from coursehub.platform.environments_build import EnvBuildError, build, find_uv, lock
from coursehub.platform.settings import load_settings

try:
    find_uv()
except EnvBuildError:
    pytest.skip("uv is not installed (pip install uv)", allow_module_level=True)


def make_course(root: Path, requirements: str) -> envs.Spec:
    folder = root / "tab-1"
    (folder / "environment").mkdir(parents=True)
    (folder / "course.yaml").write_text("id: tab-1\ntitle: Tables\n")
    (folder / "environment" / "requirements.txt").write_text(requirements)
    return envs.load_spec(folder)


def test_lock_is_reproducible_and_the_build_runs_it(tmp_path):
    spec = make_course(tmp_path / "courses", "tabulate\n")
    first = lock(spec)
    text = first.path.read_text()
    assert lock(spec).sha256 == first.sha256  # locking twice gives the same file
    assert "\ntabulate==" in text and "--hash=sha256:" in text
    assert next(r for r in envs.server_requirements() if r.startswith("nbgrader==")) in text
    assert envs.check_course(spec.folder.parent) == ([], [])

    state = tmp_path / "state"
    env = build(spec, state, progress=False)
    assert env == envs.env_dir(state, "tab-1", first)
    assert env.stat().st_mode & 0o777 == 0o755  # readable by the sandbox's unprivileged uids
    out = subprocess.run([str(env / "bin" / "python"), "-c", "import tabulate, ipykernel, coursehub.grading.exchange; "
                          "print(tabulate.tabulate([[1, 2]]))"], capture_output=True, text=True, check=True)
    assert "1  2" in out.stdout
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=state)
    assert envs.course_python(settings, "tab-1") == env / "bin" / "python"
    marker = (env / envs.MARKER_FILE).stat().st_mtime_ns
    assert build(spec, state, progress=False) == env  # same lock: reused, not rebuilt
    assert (env / envs.MARKER_FILE).stat().st_mtime_ns == marker


def test_lock_names_the_missing_package_and_its_line(tmp_path):
    spec = make_course(tmp_path / "courses", "tabulate\nno-such-package-coursehub-test>=1\n")
    with pytest.raises(EnvBuildError) as exc:
        lock(spec)
    assert exc.value.package == "no-such-package-coursehub-test"
    assert f"{spec.folder / 'requirements.txt'}, line 2" in str(exc.value)
    assert not spec.lock_path.exists()


def test_build_names_the_missing_package_and_leaves_nothing_behind(tmp_path):
    spec = make_course(tmp_path / "courses", "tabulate\n")
    lock(spec)
    text = spec.lock_path.read_text()
    spec.lock_path.write_text(text.replace("\ntabulate==", "\nno-such-package-coursehub-test=="))
    state = tmp_path / "state"
    with pytest.raises(EnvBuildError) as exc:
        build(spec, state, progress=False)
    assert exc.value.package == "no-such-package-coursehub-test"
    assert "requirements.lock, line" in str(exc.value)
    assert list((state / "envs").iterdir()) == []  # the temporary build folder is gone
