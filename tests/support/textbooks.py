"""The demo course's textbook, built once per test session (building runs its notebooks).

Unit tests (tests/textbook) and the hub test (tests/integration/textbook) share one build: the
course is copied to a temporary courses folder (tests may change the copy, never the repository),
and the book is built into a temporary state folder that the hub test then serves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import Course, load_course
from coursehub.platform.settings import Settings, load_settings
from coursehub.platform.textbook.build import BuildResult, build_textbook

DEMO = "demo-101"
_built: dict[Path, DemoBook] = {}


@dataclass
class DemoBook:
    courses_dir: Path
    state_dir: Path
    settings: Settings
    course: Course
    result: BuildResult
    log: list[str]

    @property
    def html(self) -> Path:
        return self.result.html_dir

    @property
    def source(self) -> Path:
        return self.courses_dir / DEMO / "textbook"


def demo_book(base: Path) -> DemoBook:
    """Build the demo course's book under `base` once per process; later calls return the same build."""
    base = base.resolve()
    if base not in _built:
        assert SOURCE_ROOT is not None, "tests run from the checkout"
        courses = base / "courses"
        shutil.copytree(SOURCE_ROOT / "courses" / DEMO, courses / DEMO)
        settings = load_settings(state_dir=str(base / "state"), courses_dir=str(courses))
        course = load_course(courses / DEMO)
        log: list[str] = []
        result = build_textbook(course, settings, progress=log.append)
        _built[base] = DemoBook(courses, settings.state_dir, settings, course, result, log)
    return _built[base]
