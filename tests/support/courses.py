"""The repository's course catalog copied for a test, with the staff a test needs (course.yaml's `staff`).

    courses = courses_with_staff(tmp_path, tas=["tara"])   # tmp_path/courses, prof instructs demo-101
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from coursehub.paths import SOURCE_ROOT


def courses_with_staff(parent: Path, instructors: Sequence[str] = ("prof",), tas: Sequence[str] = (), *,
                       course: str = "demo-101", platform_environment: bool = False) -> Path:
    """`parent/courses`: the catalog, where `course` has these instructors and TAs. With
    platform_environment the course's own environment is removed, so it runs in coursehub's (building
    the course's environment is tested once, in tests/integration/environments)."""
    dest = parent / "courses"
    shutil.copytree(SOURCE_ROOT / "courses", dest)
    if platform_environment:
        shutil.rmtree(dest / course / "environment")
    yml = dest / course / "course.yaml"
    data = yaml.safe_load(yml.read_text())
    data["staff"] = {"instructors": list(instructors)}
    if tas:
        data["staff"]["teaching_assistants"] = list(tas)
    yml.write_text(yaml.safe_dump(data))
    return dest
