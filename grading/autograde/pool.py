"""A pool of worker processes, each with its own Grader (and so its own sandbox slot).

Workers only execute and score; results come back to the caller, which is the single gradebook
writer. Each worker keeps a kernel pre-started for its next notebook.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing as mp
from collections.abc import Iterable, Iterator
from multiprocessing.util import Finalize

from traitlets.config import Config

from coursehub.grading.sandbox.limits import KernelLimits

from .environment import CourseRuntime
from .grader import Grader, SubmissionJob, SubmissionResult
from .sources import SourceIndex

_grader: Grader | None = None
#: submissions no worker has taken yet (-1: not known), shared by the pool's workers
_untaken = None
_workers = 1


def _init(slots, index: SourceIndex, config: Config, limits: KernelLimits, runtime: CourseRuntime | None = None,
          untaken=None, workers: int = 1) -> None:  # noqa: ANN001 - a multiprocessing Value
    global _grader, _untaken, _workers
    import logging

    logging.getLogger("traitlets").setLevel(logging.ERROR)  # "checksum changed" is nbgrader doing its job
    _untaken, _workers = untaken, workers
    _grader = Grader(index, config, limits, slot=slots.get(), runtime=runtime, spare_needed=spare_needed)
    _grader.start()
    Finalize(_grader, _grader.close, exitpriority=10)


def spare_needed() -> bool:
    """Will this worker probably grade two more submissions (so its second sandbox should start
    ahead)? Each worker takes the next untaken submission as soon as it is free, so with no more
    untaken submissions than workers, a worker gets at most about one more. Unknown: yes."""
    if _untaken is None or _untaken.value < 0:
        return True
    return _untaken.value > _workers


def _grade(job: SubmissionJob) -> SubmissionResult:
    assert _grader is not None
    if _untaken is not None:
        with _untaken.get_lock():
            if _untaken.value > 0:
                _untaken.value -= 1
    try:
        return _grader.grade(job)
    finally:
        release_free_memory()


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim). A submission's
    notebooks, messages and event loop leave ~7 MiB free but still resident in a worker's heap;
    without this, each worker keeps it for the whole run. No-op where the C library has none."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


class GraderPool:
    def __init__(self, index: SourceIndex, config: Config, limits: KernelLimits, workers: int, first_slot: int = 0,
                 runtime: CourseRuntime | None = None, total: int | None = None) -> None:
        """`total`: how many submissions `grade` will be given, if known: the workers then start no
        sandbox ahead that no submission will use (`spare_needed`)."""
        ctx = mp.get_context("fork")
        self._untaken = ctx.Value("i", -1 if total is None else total)
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(first_slot + i)
        self.workers = workers
        # What the parent has loaded so far (nbgrader, nbconvert, SQLAlchemy...) is shared with the
        # workers copy-on-write; frozen, the garbage collector does not touch (and so copy) it.
        gc.freeze()
        try:
            self._pool = ctx.Pool(workers, initializer=_init, initargs=(slots, index, config, limits, runtime,
                                                                          self._untaken, workers))
        finally:
            gc.unfreeze()
        from coursehub.grading.sandbox import kernel_template

        kernel_template.release_prestarted()  # a template started ahead is a worker's now

    def grade(self, jobs: Iterable[SubmissionJob]) -> Iterator[SubmissionResult]:
        """Results in completion order."""
        yield from self._pool.imap_unordered(_grade, jobs, chunksize=1)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> GraderPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
