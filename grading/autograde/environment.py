"""What a course's sandbox runs with: the course's own built environment and its shared data.

A grade is only right if the student's code runs with the packages the student had, so a course
with an environment folder is graded in its built environment (`coursehub env build`), never in
coursehub's; one whose environment is not built is refused (`EnvironmentNotBuilt`), not graded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from traitlets.config import Config

from coursehub.platform.environments import EnvironmentNotBuilt, course_python, runtime_paths
from coursehub.platform.environments_data import data_mounts

__all__ = ["CourseRuntime", "EnvironmentNotBuilt", "course_id_of", "course_runtime"]


@dataclass(frozen=True)
class CourseRuntime:
    """The python the sandbox runs (None: coursehub's own), what it needs read-only, and the
    course's datasets as (host folder, mount path) pairs."""

    python: Path | None = None
    runtime: tuple[Path, ...] | None = None
    data: tuple[tuple[Path, PurePosixPath], ...] = field(default=())

    def slot_kwargs(self) -> dict:
        """Keyword arguments for `SandboxSlot`."""
        return {"python": self.python, "runtime": list(self.runtime) if self.runtime is not None else None,
                "data": list(self.data)}


def course_id_of(config: Config) -> str:
    """The course an nbgrader course directory belongs to (`CourseDirectory.course_id`)."""
    return str(config.get("CourseDirectory", {}).get("course_id", "") or "")


def course_runtime(settings, course_id: str) -> CourseRuntime:  # noqa: ANN001 - platform Settings
    """The runtime for grading `course_id`: the default one for a course not in the catalog.
    Raises EnvironmentNotBuilt (naming `coursehub env build COURSE`) for a course whose environment
    has a spec but is not built, and ConfigError for an invalid `data:`."""
    folder = Path(settings.courses_dir) / course_id if course_id else None
    if folder is None or not (folder / "course.yaml").is_file():
        return CourseRuntime()
    python = course_python(settings, course_id)
    data = tuple(data_mounts(folder))
    if python is None:
        return CourseRuntime(data=data)
    return CourseRuntime(python, tuple(runtime_paths(python)), data)
