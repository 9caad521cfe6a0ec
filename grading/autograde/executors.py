"""The executor interface: grade one submission somewhere, return data. Chosen by settings
(`grading.executor`: "local" = the bubblewrap sandbox on this machine, "kubernetes" = one Job per
submission). Both take the same SubmissionJob and return the same SubmissionResult."""

from __future__ import annotations

from typing import Protocol

from traitlets.config import Config

from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.platform.errors import ConfigError

from .environment import CourseRuntime, EnvironmentNotBuilt, course_id_of, course_runtime
from .grader import Grader, SubmissionJob, SubmissionResult
from .sources import SourceIndex


class Executor(Protocol):
    def grade(self, job: SubmissionJob, index: SourceIndex, config: Config) -> SubmissionResult: ...

    def close(self) -> None: ...


class LocalExecutor:
    """The sandbox on this machine. Keeps one Grader (two slots, kernels pre-started) per assignment,
    running in the course's own environment when it has one (`environment.course_runtime`)."""

    def __init__(self, limits: KernelLimits, slot: int = 0, settings=None) -> None:  # noqa: ANN001 - platform Settings
        self.limits = limits
        self.slot = slot
        self.settings = settings
        self._key: tuple | None = None
        self._grader: Grader | None = None

    def runtime(self, config: Config) -> CourseRuntime:
        """The course's environment and data; raises EnvironmentNotBuilt (and ConfigError)."""
        if self.settings is None:
            return CourseRuntime()
        return course_runtime(self.settings, course_id_of(config))

    def grade(self, job: SubmissionJob, index: SourceIndex, config: Config) -> SubmissionResult:
        try:
            runtime = self.runtime(config)
        except (EnvironmentNotBuilt, ConfigError) as e:
            # grading with other packages than the student's would give wrong grades: refuse, not a score
            return SubmissionResult(job.student, job.assignment, "failed",
                                    error=f"not graded (infrastructure failure, not a score): {e}")
        key = (id(index), job.assignment, runtime)
        if self._key != key:
            self.close()
            from coursehub.grading.sandbox.isolation import announce

            announce(self.limits)
            self._grader = Grader(index, config, self.limits, slot=self.slot, runtime=runtime)
            self._grader.start()
            self._key = key
        assert self._grader is not None
        return self._grader.grade(job)

    def close(self) -> None:
        if self._grader is not None:
            self._grader.close()
        self._grader, self._key = None, None


def make_executor(settings, slot: int = 0) -> Executor:
    """The executor the settings ask for."""
    limits = KernelLimits.from_settings(settings.grading.sandbox)
    if settings.grading.executor == "kubernetes":
        from .k8s_executor import KubernetesExecutor

        return KubernetesExecutor(settings, limits)
    return LocalExecutor(limits, slot=slot, settings=settings)
