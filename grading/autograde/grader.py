"""Grade one submission: prepare -> execute in the sandbox -> clean outputs -> result (data only).

A `Grader` belongs to one worker and owns one sandbox slot. It pre-starts the kernel for the next
notebook while the caller handles the previous result, and gives every notebook a fresh kernel.
The result holds the finished notebooks (JSON) and per-cell scores; it never touches the gradebook:
`gradebook.GradebookWriter` applies results, once, outside the sandbox.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from coursehub.grading.sandbox.kernel import SandboxKernelManager
from coursehub.grading.sandbox.limits import Limits
from coursehub.grading.sandbox.slot import KernelInfo, SandboxSlot

from . import execute, steps
from .sources import SourceIndex

log = logging.getLogger(__name__)

#: Overall statuses of a submission, worst wins.
STATUS_ORDER = ["graded", "incomplete", "output_limit", "timeout", "failed"]


@dataclass
class SubmissionJob:
    """What a worker needs to grade one submission; plain data (picklable, JSON-able)."""

    student: str
    assignment: str
    #: notebook name -> submitted notebook JSON (notebooks missing from the submission are absent)
    notebooks: dict[str, str]
    #: relative path -> bytes of the other files the kernel may read (source files win)
    files: dict[str, bytes] = field(default_factory=dict)


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
    grades a submission, the other has already been wiped and its kernels (one per notebook) are
    starting, so a submission never waits for a kernel to boot."""

    def __init__(self, index: SourceIndex, config: Config | None = None, limits: Limits | None = None,
                 slot: int = 0, base_dir: Path | None = None) -> None:
        self.index = index
        self.config = config or Config()
        self.limits = limits or Limits()
        env = {"NBGRADER_EXECUTION": "autograde"}
        self.slots = [SandboxSlot(2 * slot + i, self.limits, base_dir=base_dir, extra_env=env) for i in range(2)]
        self._kernels: dict[int, dict[str, KernelInfo]] = {}
        self._turn = 0

    def __enter__(self) -> Grader:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        for s in self.slots:
            s.start()
            self._prepare(s)

    def close(self) -> None:
        for s in self.slots:
            s.close()

    @property
    def slot(self) -> SandboxSlot:
        """The slot the next submission will use."""
        return self.slots[self._turn]

    def _prepare(self, slot: SandboxSlot) -> None:
        """Wipe the slot and fork one kernel per notebook for its next submission."""
        argv = execute.kernel_args(self.config)
        kernels = {}
        for i, name in enumerate(self.index.notebooks):
            kernels[name] = slot.spawn(argv=argv, fresh=(i == 0))
        self._kernels[slot.slot] = kernels

    def _kernel(self, slot: SandboxSlot, name: str) -> KernelInfo:
        k = self._kernels.get(slot.slot, {}).get(name)
        if k is None or not slot.kernel_alive(k.pid):  # killed by a limit, or the sandbox restarted
            k = slot.spawn(argv=execute.kernel_args(self.config), fresh=False)
        return k

    def grade(self, job: SubmissionJob) -> SubmissionResult:
        t0 = time.monotonic()
        slot = self.slots[self._turn]
        self._turn = (self._turn + 1) % len(self.slots)
        result = SubmissionResult(job.student, job.assignment, "graded")
        fired = threading.Event()
        timer = threading.Timer(self.limits.submission_timeout_seconds, self._kill_all, args=(slot, fired))
        timer.daemon = True
        timer.start()
        try:
            if not slot.alive():
                slot.restart()
                self._prepare(slot)
            self._write_files(slot, job)
            for name in [n for n in self.index.notebooks if n in job.notebooks]:
                if fired.is_set():  # out of time: the rest is not run, and cannot score
                    result.notebooks.append(self._not_run(job, name, "the submission ran out of time"))
                    continue
                kernel = self._kernel(slot, name)
                result.notebooks.append(self._grade_notebook(slot, kernel, job, name, fired))
                slot.kill(kernel)
        except Exception as e:  # noqa: BLE001 - a grader fault, not the student's
            log.exception("grading %s/%s failed", job.student, job.assignment)
            result.status, result.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            timer.cancel()
        try:  # wipe this slot and start its kernels for its next submission (in the background)
            if fired.is_set() or not slot.alive():
                slot.restart()
            self._prepare(slot)
        except Exception:  # noqa: BLE001
            log.exception("sandbox slot %s could not be prepared; it will be restarted", slot.slot)
        if result.status != "failed":
            result.status = worst([n.status for n in result.notebooks])
        result.seconds = time.monotonic() - t0
        return result

    def _grade_notebook(self, slot: SandboxSlot, kernel: KernelInfo, job: SubmissionJob, name: str,
                        fired: threading.Event) -> NotebookResult:
        res = steps.resources_for(job.student, job.assignment, name, self.index)
        sanitized = steps.sanitize(job.notebooks[name], res, self.config)
        nb = nbformat.reads(sanitized, as_version=4)
        res["nbgrader"]["source_index"] = None
        km = SandboxKernelManager(slot, kernel)
        outcome = execute.run_notebook(km, nb, res, self.config, self.limits, deadline_timer=fired)
        finished = steps.finish(nb, res, self.config)
        scores = steps.cell_scores(nbformat.reads(finished, as_version=4))
        return NotebookResult(name, outcome.status, outcome.reason, finished, scores)

    def _not_run(self, job: SubmissionJob, name: str, reason: str) -> NotebookResult:
        res = steps.resources_for(job.student, job.assignment, name, self.index)
        nb = nbformat.reads(steps.sanitize(job.notebooks[name], res, self.config), as_version=4)
        res["nbgrader"]["source_index"] = None
        execute.mark_unfinished(nb, 0, "KernelStopped", reason)
        finished = steps.finish(nb, res, self.config)
        return NotebookResult(name, execute.TIMEOUT, reason, finished,
                              steps.cell_scores(nbformat.reads(finished, as_version=4)))

    @staticmethod
    def _write_files(slot: SandboxSlot, job: SubmissionJob) -> None:
        """Put the submission's other files into the (already wiped) workspace, owned by the slot."""
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
        proc = slot.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
