"""Where things live by default: the source checkout, the demo courses, the state folder."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout this package was installed from (editable installs) or None.
SOURCE_ROOT: Path | None = Path(__file__).resolve().parents[1]
if not (SOURCE_ROOT / "pyproject.toml").is_file():
    SOURCE_ROOT = None


def default_courses_dir() -> Path:
    """`$COURSEHUB_COURSES_DIR`, else `courses/` in the checkout, else `./courses`."""
    env = os.environ.get("COURSEHUB_COURSES_DIR")
    if env:
        return Path(env).resolve()
    if SOURCE_ROOT is not None:
        return SOURCE_ROOT / "courses"
    return Path.cwd() / "courses"


def default_state_dir() -> Path:
    """`$COURSEHUB_STATE_DIR`, else `.coursehub/` in the checkout (git-ignored), else `./.coursehub`."""
    env = os.environ.get("COURSEHUB_STATE_DIR")
    if env:
        return Path(env).resolve()
    base = SOURCE_ROOT if SOURCE_ROOT is not None else Path.cwd()
    return base / ".coursehub"
