"""Grade one submission: prepare -> execute in the sandbox -> clean outputs -> result (data only).

A `Grader` belongs to one worker and owns two sandbox slots. Every submission gets a sandbox of its
own (new pid namespace, workspace and cgroup); after it, the slot is torn down, proven clean and
started again for the next student in the background, while the other slot grades. Every notebook
gets a fresh kernel. A failure that is not the student's (a kernel that did not start, a sandbox
that failed, output lost under load) is retried in a fresh sandbox and, if it persists, reported as
"failed": never applied as a score. The result holds the finished notebooks (JSON) and per-cell
scores; it never touches the gradebook: `gradebook.GradebookWriter` applies results, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from coursehub.grading.sandbox.kernel import SandboxKernelManager
from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.grading.sandbox.slot import KernelInfo, SandboxError, SandboxSlot, SlotRetired

from . import execute, steps
from .environment import CourseRuntime
from .sources import SourceIndex

log = logging.getLogger(__name__)

#: Overall statuses of a submission, worst wins. "invalid": a file of the submission could not be
#: read as a notebook (the student's fault, nothing is run); "failed": a grader or infrastructure
#: fault (not written to the gradebook; the queue retries it).
STATUS_ORDER = ["graded", "incomplete", "output_limit", "timeout", "invalid", "failed"]

#: How often a submission is re-run in a fresh sandbox after an infrastructure failure.
INFRA_RETRIES = 2


@dataclass
class SubmissionJob:
    """What a worker needs to grade one submission; plain data (picklable, JSON-able)."""

    student: str
    assignment: str
    #: notebook name -> submitted notebook JSON (notebooks missing from the submission are absent)
    notebooks: dict[str, str]
    #: relative path -> bytes of the other files the kernel may read (source files win)
    files: dict[str, bytes] = field(default_factory=dict)
    #: why the submission cannot be graded at all (unreadable notebook, ...); nothing is run
    invalid: str = ""


@dataclass
class NotebookResult:
    name: str
    status: str
    reason: str = ""
    notebook: str = ""  # finished notebook JSON, as nbgrader would write it to autograded/
    scores: dict[str, dict] = field(default_factory=dict)


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    status: str
    notebooks: list[NotebookResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def reasons(self) -> list[str]:
        return [f"{n.name}: {n.reason}" for n in self.notebooks if n.reason]

    def score(self) -> float:
        return sum(s["auto_score"] or 0 for n in self.notebooks for s in n.scores.values())


def worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUS_ORDER.index) if statuses else "graded"


class Grader:
    """One worker's grader. It owns two sandbox slots and alternates between them: while one slot
    grades a submission, the other is being torn down, proven clean and started again, with the
    kernel of its first notebook starting, so a submission rarely waits for a kernel to boot. Each
    following notebook's kernel starts while the notebook before it runs.

    `spare_needed` (default: always) says whether this grader will probably grade two more
    submissions. When it says no, a slot that has finished its submission is torn down but not
    started again ahead: at the end of a batch that start would be paid for nothing (a sandbox and
    a kernel, about a tenth of a submission's CPU) and waited for at exit. A slot that is needed
    after all starts when its turn comes."""

    def __init__(self, index: SourceIndex, config: Config | None = None, limits: KernelLimits | None = None,
                 slot: int = 0, base_dir: Path | None = None, runtime: CourseRuntime | None = None,
                 spare_needed: Callable[[], bool] | None = None) -> None:
        self.index = index
        self.config = config or Config()
        self.limits = limits or KernelLimits()
        self.base_dir = base_dir
        #: the course's environment and data (environment.course_runtime); default: coursehub's own
        self.runtime = runtime or CourseRuntime()
        self._env = {"NBGRADER_EXECUTION": "autograde"}
        self._spare_needed = spare_needed or (lambda: True)
        self._next_number = 2 * slot
        self.slots = [self._new_slot() for _ in range(2)]
        self.retired: list[SandboxSlot] = []
        self._kernels: dict[int, dict[str, KernelInfo]] = {}
        self._ready: dict[int, threading.Thread] = {}
        self._errors: dict[int, BaseException] = {}
        self._turn = 0

    def __enter__(self) -> Grader:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _new_slot(self) -> SandboxSlot:
        n, self._next_number = self._next_number, self._next_number + 1
        return SandboxSlot(n, self.limits, base_dir=self.base_dir, extra_env=self._env, **self.runtime.slot_kwargs())

    def start(self) -> None:
        """Start the first slot now and the others in the background (as after a submission): the
        first submission does not wait for every sandbox to start."""
        self.slots[0].start()
        self._prepare(self.slots[0])
        if self._spare_needed():
            for i in range(1, len(self.slots)):
                self._give_back(i)

    def close(self) -> None:
        for t in list(self._ready.values()):
            t.join()
        for s in self.slots:
            s.close()
        for s in self.retired:
            s.close()

    def wait_idle(self) -> None:
        """Wait until every slot has been torn down and started again after its last submission."""
        for t in list(self._ready.values()):
            t.join()

    @property
    def slot(self) -> SandboxSlot:
        """The slot the next submission will use."""
        return self.slots[self._turn]

    def _prepare(self, slot: SandboxSlot) -> None:
        """Fork the kernel of the assignment's first notebook in the slot's (new) sandbox, for its
        next submission. The others start one ahead, while the notebook before them runs
        (`_kernel`): an idle slot holds one kernel, not one per notebook."""
        self._kernels[id(slot)] = {}
        if self.index.notebooks:
            self._started(slot, self.index.notebooks[0])

    def _kernel(self, slot: SandboxSlot, name: str, then: str | None = None) -> KernelInfo:
        """The kernel for notebook `name` (the one started ahead, or a new one); with `then`, the
        kernel of the notebook to grade next starts now, while this one runs. Starting ahead is
        only a head start: if it fails (what an earlier notebook left running may hold the
        sandbox's process limit), that kernel is started, with the usual checks, when its turn
        comes, and this notebook is graded as it would have been."""
        k = self._started(slot, name)
        if then is not None:
            try:
                self._started(slot, then)
            except SandboxError as e:
                log.debug("the kernel of %s could not start ahead: %s", then, e)
        return k

    def _started(self, slot: SandboxSlot, name: str) -> KernelInfo:
        kernels = self._kernels.setdefault(id(slot), {})
        k = kernels.get(name)
        if k is None or not slot.kernel_alive(k.pid, k.generation):  # killed, never started, or an older sandbox
            k = kernels[name] = slot.spawn(argv=execute.kernel_args(self.config))
        return k

    # -- slot turnover ------------------------------------------------------------------------------
    def _recycle(self, i: int, start: bool = True) -> None:
        """Tear slot i down (proven clean) and, with `start`, start it again; a slot that cannot be
        proven clean is retired and replaced by a new one (a new uid), never reused."""
        slot = self.slots[i]
        try:
            try:
                slot.teardown()
            except SlotRetired:
                log.error("sandbox slot %s retired after a submission; replacing it", slot.slot)
                self.retired.append(slot)
                slot = self.slots[i] = self._new_slot()
            if start:
                slot.start()
                self._prepare(slot)
        except BaseException as e:  # noqa: BLE001 - reported when the slot is next needed
            self._errors[i] = e

    def _take(self) -> tuple[int, SandboxSlot]:
        i = self._turn
        self._turn = (self._turn + 1) % len(self.slots)
        t = self._ready.pop(i, None)
        if t is not None:
            t.join()
        err = self._errors.pop(i, None)
        slot = self.slots[i]
        if err is not None or not slot.alive():
            # the background restart failed (or the sandbox died while idle): one more try, here
            self._recycle(i)
            err = self._errors.pop(i, None)
            if err is not None:
                raise SandboxError(f"sandbox slot could not be started: {type(err).__name__}: {err}") from err
            slot = self.slots[i]
        return i, slot

    def _give_back(self, i: int) -> None:
        """Slot i's submission is over: tear it down in the background and, if this grader will
        need it again, start it afresh."""
        t = threading.Thread(target=self._recycle, args=(i, self._spare_needed()), daemon=True,
                             name=f"sandbox-recycle-{i}")
        self._ready[i] = t
        t.start()

    # -- grading ------------------------------------------------------------------------------------
    def grade(self, job: SubmissionJob) -> SubmissionResult:
        t0 = time.monotonic()
        if job.invalid:
            return SubmissionResult(job.student, job.assignment, "invalid", error=job.invalid,
                                    seconds=time.monotonic() - t0)
        sanitized = {}
        for name in [n for n in self.index.notebooks if n in job.notebooks]:
            try:  # outside the sandbox, before anything runs: nbgrader's checks of the student's file
                sanitized[name] = steps.sanitize(job.notebooks[name], self._resources(job, name), self.config)
            except (steps.PipelineError, steps.CourseStepError) as e:  # the course's configuration: never a score
                return SubmissionResult(job.student, job.assignment, "failed", error=str(e),
                                        seconds=time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - not a notebook nbgrader can grade: the student's file
                first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
                return SubmissionResult(job.student, job.assignment, "invalid",
                                        error=f"{name}.ipynb is not a gradable notebook ({type(e).__name__}: {first})",
                                        seconds=time.monotonic() - t0)
        for attempt in range(1 + INFRA_RETRIES):
            result, infra = self._grade_once(job, sanitized)
            if not infra:
                break
            log.warning("grading %s/%s: infrastructure failure (attempt %s): %s", job.student, job.assignment,
                        attempt + 1, infra)
        else:
            result = SubmissionResult(job.student, job.assignment, "failed",
                                      error=f"infrastructure failure, not a score (tried {1 + INFRA_RETRIES} "
                                            f"times in fresh sandboxes): {infra}")
        result.seconds = time.monotonic() - t0
        return result

    def _resources(self, job: SubmissionJob, name: str) -> dict:
        return steps.resources_for(job.student, job.assignment, name, self.index)

    def _grade_once(self, job: SubmissionJob, sanitized: dict[str, str]) -> tuple[SubmissionResult, str]:
        """One attempt in one fresh sandbox. Returns the result and, if the attempt failed for a
        reason that is not the student's, that reason (the result must then not be used)."""
        result = SubmissionResult(job.student, job.assignment, "graded")
        try:
            i, slot = self._take()
        except SandboxError as e:
            return result, str(e)
        fired = threading.Event()
        timer = threading.Timer(self.limits.submission_timeout_seconds, self._kill_all, args=(slot, fired))
        timer.daemon = True
        timer.start()
        infra = ""
        try:
            self._write_files(slot, job)
            names = list(sanitized)
            for pos, name in enumerate(names):
                following = names[pos + 1] if pos + 1 < len(names) else None
                if fired.is_set():  # out of time: the rest is not run, and cannot score
                    result.notebooks.append(self._not_run(job, name, sanitized[name], "the submission ran out of time"))
                    continue
                if not slot.alive():  # the student's own code ended the sandbox: a new one, same student
                    slot.recycle()
                    self._write_files(slot, job)
                kernel = self._kernel(slot, name, then=following)
                nb_result, infra = self._grade_notebook(slot, kernel, job, name, sanitized[name], fired)
                if infra and not fired.is_set():
                    # an earlier notebook's code may have killed this one's kernel before it ran: that
                    # notebook gets one more try in a new sandbox (same student) before it counts
                    slot.recycle()
                    self._write_files(slot, job)
                    kernel = self._kernel(slot, name)
                    nb_result, infra = self._grade_notebook(slot, kernel, job, name, sanitized[name], fired)
                if infra:
                    break
                result.notebooks.append(nb_result)
                slot.kill(kernel)
        except SandboxError as e:
            infra = str(e)
        except Exception as e:  # noqa: BLE001 - a grader fault, not the student's
            log.exception("grading %s/%s failed", job.student, job.assignment)
            result.status, result.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            timer.cancel()
            self._give_back(i)  # every submission's sandbox is torn down, whatever happened
        if result.status != "failed":
            result.status = worst([n.status for n in result.notebooks])
        return result, infra

    def _grade_notebook(self, slot: SandboxSlot, kernel: KernelInfo, job: SubmissionJob, name: str,
                        sanitized: str, fired: threading.Event) -> tuple[NotebookResult, str]:
        res = self._resources(job, name)
        nb = nbformat.reads(sanitized, as_version=4)
        res["nbgrader"]["source_index"] = None
        km = SandboxKernelManager(slot, kernel)
        outcome = execute.run_notebook(km, nb, res, self.config, self.limits, deadline_timer=fired)
        if outcome.infra:
            return NotebookResult(name, outcome.status, outcome.reason), outcome.infra
        finished = steps.finish(nb, res, self.config)
        scores = steps.cell_scores(nbformat.reads(finished, as_version=4))
        return NotebookResult(name, outcome.status, outcome.reason, finished, scores), ""

    def _not_run(self, job: SubmissionJob, name: str, sanitized: str, reason: str) -> NotebookResult:
        res = self._resources(job, name)
        nb = nbformat.reads(sanitized, as_version=4)
        res["nbgrader"]["source_index"] = None
        execute.mark_unfinished(nb, 0, "KernelStopped", reason)
        finished = steps.finish(nb, res, self.config)
        return NotebookResult(name, execute.TIMEOUT, reason, finished,
                              steps.cell_scores(nbformat.reads(finished, as_version=4)))

    @staticmethod
    def _write_files(slot: SandboxSlot, job: SubmissionJob) -> None:
        """Put the submission's other files into the slot's new workspace, owned by the slot."""
        import os

        from coursehub.grading.sandbox.bwrap import privileged

        root = slot.workspace.resolve()
        for rel, data in job.files.items():
            dest = (slot.workspace / rel).resolve()
            if root not in dest.parents:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            if privileged():
                os.chown(dest, slot.uid, slot.uid)
                for parent in dest.parents:
                    if parent == root:
                        break
                    os.chown(parent, slot.uid, slot.uid)

    @staticmethod
    def _kill_all(slot: SandboxSlot, fired: threading.Event) -> None:
        fired.set()
        slot.kill_sandbox()
