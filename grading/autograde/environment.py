"""What a course's sandbox runs with: the course's own built environment and its shared data.

A grade is only right if the student's code runs with the packages the student had, so a course
with an environment folder is graded in its built environment (`coursehub env build`), never in
coursehub's; one whose environment is not built is refused (`EnvironmentNotBuilt`), not graded.
The parity check (`ParityCheck`, rules in `coursehub.grading.envparity`) refuses, with a status of
its own, a submission made in another environment or kernel than the course's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from traitlets.config import Config

from coursehub.grading import envparity
from coursehub.platform.environments import (
    DEFAULT_ENVIRONMENT,
    EnvironmentNotBuilt,
    course_environment_id,
    course_python,
    runtime_paths,
)
from coursehub.platform.environments_data import data_mounts

from .sources import SourceIndex

__all__ = ["CourseRuntime", "EnvironmentNotBuilt", "ParityCheck", "course_id_of", "course_runtime",
           "expected_environment", "source_kernels"]

log = logging.getLogger(__name__)


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


def expected_environment(settings, course_id: str) -> str:  # noqa: ANN001 - platform Settings
    """The environment id a course's submissions must come from: its lock's sha256, or `default`
    (a course not in the catalog, or without an environment folder, runs in coursehub's own)."""
    folder = Path(settings.courses_dir) / course_id if course_id else None
    if folder is None or not (folder / "course.yaml").is_file():
        return DEFAULT_ENVIRONMENT
    return course_environment_id(folder)


def source_kernels(index: SourceIndex) -> frozenset[str]:
    """The kernelspec names of the assignment's source notebooks (what students should run)."""
    names = set()
    for spec in index.kernelspecs.values():
        try:
            name = json.loads(spec)["name"] if spec else None
        except (ValueError, KeyError, TypeError):
            name = None
        if isinstance(name, str) and name:
            names.add(name)
    return frozenset(names)


@dataclass(frozen=True)
class ParityCheck:
    """The parity check of one grading run: the course's environment and kernels, and whether the
    instructor accepts submissions made elsewhere (`--accept-environment-mismatch`)."""

    expected: str
    kernels: frozenset[str] = frozenset()
    accept: bool = False

    @classmethod
    def for_course(cls, settings, course_id: str, index: SourceIndex, accept: bool = False) -> ParityCheck:  # noqa: ANN001
        return cls(expected_environment(settings, course_id), source_kernels(index), accept)

    def check(self, submission_dir: Path, student: str, assignment: str) -> envparity.Parity:
        """Compare one collected submission (its folder's record) with the course."""
        return self.check_record(envparity.read_record(submission_dir), student, assignment)

    def check_record(self, recorded: envparity.Recorded | None, student: str, assignment: str) -> envparity.Parity:
        """Compare a submission's record with the course; logs what is not a plain match."""
        parity = envparity.check(recorded, self.expected, self.kernels, accept=self.accept)
        if parity.outcome == "unrecorded":
            log.info("%s/%s: no environment recorded with the submission (an older client or nbgrader's own "
                     "exchange); graded without a parity check", student, assignment)
        elif parity.outcome != "match":
            log.warning("%s/%s: %s", student, assignment, parity.reason)
        return parity


def stored_record(engine, submission_id: int) -> envparity.Recorded | None:  # noqa: ANN001 - an SQLAlchemy Engine
    """The record the grading service keeps with a stored submission (None: none was reported):
    what the worker checks for jobs that name a stored submission, not the editable submitted/ folder."""
    from sqlalchemy.orm import Session

    from coursehub.grading.models import Submission

    with Session(engine) as s:
        row = s.get(Submission, submission_id)
        if row is None or envparity.clean_environment(row.environment) is None:
            return None
        return envparity.Recorded(row.environment, envparity.clean_kernel(row.kernel))
