"""A course with its own environment, locked and built with the real uv (tests/integration/conftest.py
builds it once per session: builds take 10-60 s)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: A course whose environment has `roman`, a small package coursehub's own .venv lacks.
ENV_COURSE = "tab-env-1"
ENV_EXTRA = "roman"
ENV_VENV_ONLY = "pandas"  # in coursehub's .venv only


@dataclass(frozen=True)
class BuiltCourseEnv:
    root: Path  # holds courses/ and state/
    folder: Path  # courses/<ENV_COURSE>
    env: Path  # state/envs/<ENV_COURSE>-<lock hash>

    @property
    def courses_dir(self) -> Path:
        return self.root / "courses"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"


def build_course_env(root: Path) -> BuiltCourseEnv:
    """The catalog course ENV_COURSE under `root`, locked and built; its course.yaml names a
    read-only dataset under data/numbers."""
    from coursehub.platform import environments as envs
    from coursehub.platform.environments_build import build, lock

    folder = root / "courses" / ENV_COURSE
    (folder / "environment").mkdir(parents=True)
    (folder / "data" / "numbers").mkdir(parents=True)
    (folder / "data" / "numbers" / "values.txt").write_text("42\n")
    for d in (root, root / "courses", folder, folder / "data", folder / "data" / "numbers"):
        d.chmod(0o755)  # the sandbox's unprivileged uid reads the dataset
    (folder / "data" / "numbers" / "values.txt").chmod(0o644)
    (folder / "course.yaml").write_text(f"id: {ENV_COURSE}\ntitle: Roman numerals\n"
                                        "data:\n  - name: numbers\n    path: data/numbers\n")
    (folder / "environment" / "requirements.txt").write_text(f"{ENV_EXTRA}\n")
    spec = envs.load_spec(folder)
    lock(spec)
    env = build(spec, root / "state", progress=False)
    python = env / "bin" / "python"
    assert subprocess.run([str(python), "-c", f"import {ENV_EXTRA}"]).returncode == 0
    assert subprocess.run([str(python), "-c", f"import {ENV_VENV_ONLY}"], capture_output=True).returncode != 0
    assert subprocess.run([sys.executable, "-c", f"import {ENV_EXTRA}"], capture_output=True).returncode != 0
    return BuiltCourseEnv(root, folder, env)
