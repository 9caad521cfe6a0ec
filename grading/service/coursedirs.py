"""The shared nbgrader course directory of each course (how course staff share one course).

Every instructor and TA of a course works on ONE nbgrader course directory: `source/`, `release/`,
`submitted/`, `autograded/`, `feedback/` and the gradebook. On the local platform it is
`<state_dir>/course-dirs/<course>/`, and the staff servers' nbgrader configuration points
`CourseDirectory.root` there when the server is started for a course its user teaches (see
`nbgrader_config` in platform/userconfig.py). On Kubernetes the same folder is a volume per course
mounted only into the course staff's pods, and the gradebook is a PostgreSQL database per course
(docs/operators/grading-service.md). The service seeds `source/` from the course folder once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from coursehub.platform.courses import Catalog
from coursehub.platform.settings import Settings

from ..deadlines import sync_course_dir


def course_dirs_root(settings: Settings) -> Path:
    return settings.state_dir / "course-dirs"


def course_dir(settings: Settings, course_id: str) -> Path:
    return course_dirs_root(settings) / course_id


def ensure_course_dirs(settings: Settings, catalog: Catalog, sync_deadlines: bool = True) -> list[Path]:
    """Create each course's directory with its nbgrader config and assignment sources (never
    overwriting what staff already changed). `sync_deadlines=False` leaves course.yaml's deadlines
    for `sync_all_deadlines` (the service runs it after it listens: JupyterHub waits only ~10 s
    for a managed service, and nbgrader's import alone takes seconds on a busy machine)."""
    made = []
    for course in catalog:
        root = course_dir(settings, course.id)
        (root / "source").mkdir(parents=True, exist_ok=True)
        config = root / "nbgrader_config.py"
        if not config.exists():
            config.write_text(
                "# The shared nbgrader course directory of this course (written once by coursehub).\n"
                "c = get_config()  # noqa\n"
                f"c.CourseDirectory.course_id = {course.id!r}\n"
            )
        if course.folder is not None:
            for a in course.assignments:
                src = course.folder / a.source_dir
                dest = root / "source" / a.id
                if src.is_dir() and not dest.exists():
                    shutil.copytree(src, dest)
        if sync_deadlines:
            sync_course_dir(root, course)  # course.yaml's deadlines into the gradebook (the formgrader's)
        made.append(root)
    return made


def sync_all_deadlines(settings: Settings, catalog: Catalog) -> None:
    """course.yaml's deadlines into every course's gradebook (the formgrader's); never raises."""
    for course in catalog:
        sync_course_dir(course_dir(settings, course.id), course)
