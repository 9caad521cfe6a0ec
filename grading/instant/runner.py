"""A bounded pool that grades submissions against their visible tests, right after submit.

Why a pool and not the durable queue: the queue's jobs are keyed by (course, assignment, student)
and a newer job supersedes an older one, so an instant run there would cancel or be mistaken for
the real autograde; and instant results are disposable (the submission itself is already durable,
and the full autograde after collect is what counts). The pool is small (`workers`, one sandbox
executor each) and its waiting line is bounded (`max_waiting`): beyond it a submission is marked
"busy" at once instead of waiting behind a deadline rush. A submission that a newer one of the same
student replaced before its turn is not run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store import BUSY, DONE, FAILED, PENDING, SUPERSEDED, InstantStore

if TYPE_CHECKING:  # nbgrader's import costs seconds: the service must listen first (JupyterHub 5 waits ~10 s)
    from coursehub.grading.autograde.course import NbgraderCourse
    from coursehub.grading.autograde.sources import SourceIndex

log = logging.getLogger("coursehub.grading.instant")

#: Sandbox slot numbers of the instant pool (names only; uids are allocated host-wide).
FIRST_SLOT = 900
LATER = "Your submission is stored and will be graded in full after the deadline."


def enabled(course: Any, assignment_id: str) -> bool:
    """Instant feedback is on for this assignment in course.yaml (off by default)."""
    a = course.assignment(assignment_id) if course is not None else None
    return bool(a is not None and getattr(a, "instant_feedback", False))


class InstantRunner:
    def __init__(self, store: InstantStore, course_dir: Callable[[str], Path],
                 make_executor: Callable[[int], Any], workers: int = 1, max_waiting: int = 32) -> None:
        """`course_dir(course_id)`: the course's nbgrader directory (gradebook, source);
        `make_executor(slot)`: an autograde executor (`autograde.executors.make_executor`)."""
        self.store = store
        self.course_dir = course_dir
        self.make_executor = make_executor
        self.max_waiting = max_waiting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="instant")
        self._lock = threading.Lock()
        self._waiting = 0
        self._latest: dict[tuple[str, str, str], int] = {}
        self._local = threading.local()
        self._slots = iter(range(FIRST_SLOT, FIRST_SLOT + 10_000))
        self._indexes: dict[tuple, tuple[SourceIndex, SourceIndex, NbgraderCourse]] = {}
        self._executors: list[Any] = []

    # -- producer side (the service, after a submission is stored) ------------------------------
    def submitted(self, info: dict, course: Any, files: Callable[[], dict[str, bytes]]) -> dict:
        """Queue a stored submission (`info` as `ExchangeCore.submit` returns it) if the assignment
        has instant feedback on; returns what the submit answer should say about it."""
        if not enabled(course, info["assignment_id"]):
            return {}
        sid, cid = int(info["id"]), info["course_id"]
        key = (cid, info["assignment_id"], info["student_id"])
        with self._lock:
            if self._waiting >= self.max_waiting:
                self._record(info, BUSY, message=f"Instant feedback is busy right now. {LATER}")
                return {"instant_feedback": BUSY}
            self._waiting += 1
            self._latest[key] = sid
        self._record(info, PENDING, message="Running the visible tests...")
        self._pool.submit(self._run, info, key, files)
        return {"instant_feedback": PENDING}

    def _record(self, info: dict, status: str, **fields: Any) -> None:
        self.store.write(info["course_id"], int(info["id"]), {
            "submission_id": int(info["id"]), "course_id": info["course_id"],
            "assignment_id": info["assignment_id"], "student_id": info["student_id"],
            "timestamp": info.get("timestamp"), "status": status, **fields})

    # -- worker side ----------------------------------------------------------------------------
    def _run(self, info: dict, key: tuple[str, str, str], files: Callable[[], dict[str, bytes]]) -> None:
        with self._lock:
            self._waiting -= 1
            newer = self._latest.get(key, 0) > int(info["id"])
        if newer:
            self._record(info, SUPERSEDED, message="A newer submission replaced this one before its tests ran.")
            return
        try:
            fields = self.grade(info, files())
            self._record(info, fields.pop("status", DONE), **fields)
        except Exception as e:  # noqa: BLE001 - reported to the student as "not available", logged here
            log.exception("instant feedback for submission %s failed", info["id"])
            self._record(info, FAILED, message=f"Instant feedback is not available for this submission "
                                               f"({type(e).__name__}). {LATER}")
        finally:
            with self._lock:
                if self._latest.get(key) == int(info["id"]):
                    del self._latest[key]

    def _index(self, course_dir: Path, assignment: str) -> tuple[SourceIndex, SourceIndex, NbgraderCourse]:
        source = course_dir / "source" / assignment
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in source.glob("*.ipynb"))) \
            if source.is_dir() else ()
        key = (str(course_dir), assignment, stamp)
        if key not in self._indexes:
            from coursehub.grading.autograde.course import NbgraderCourse

            from . import visible

            course = NbgraderCourse(course_dir)
            course.ensure_assignment(assignment)
            full = course.source_index(assignment)
            self._indexes[key] = (full, visible.visible_index(full, course.config), course)
        return self._indexes[key]

    def _executor(self) -> Any:
        ex = getattr(self._local, "executor", None)
        if ex is None:
            with self._lock:
                slot = next(self._slots)
            ex = self._local.executor = self.make_executor(slot)
            self._executors.append(ex)
        return ex

    def grade(self, info: dict, files: dict[str, bytes]) -> dict:
        """Run the visible tests of one submission; the record's fields (never a grade)."""
        from . import visible

        course_dir = self.course_dir(info["course_id"])
        _, index, course = self._index(course_dir, info["assignment_id"])
        # the job the queue worker builds from a stored submission (its notebooks, its files, the
        # source's non-notebook files), here with the visible-only index
        job = course.job_from_files(info["student_id"], info["assignment_id"], index, files)
        wanted = visible.visible_test_cells(index)
        if job.invalid:
            return {"tests": [], "message": f"The tests were not run: {job.invalid}."}
        result = self._executor().grade(job, index, course.config)
        if result.status == "failed":
            log.warning("instant feedback for submission %s: %s", info["id"], result.error)
            return {"tests": [], "status": FAILED,
                    "message": f"Instant feedback is not available for this submission right now. {LATER}"}
        if result.status == "invalid":
            return {"tests": [], "message": f"The tests were not run: {result.error}"}
        tests: list[visible.CellResult] = []
        ran = {n.name: n for n in result.notebooks}
        for nb in index.notebooks:
            if not wanted.get(nb):
                continue
            if nb in ran and ran[nb].notebook:
                tests += visible.results(nb, ran[nb].notebook, wanted[nb])
            else:
                tests += [visible.CellResult(nb, cid, False, index.points[nb][cid],
                                             f"{nb}.ipynb was not submitted or did not run")
                          for cid in sorted(wanted[nb])]
        notes = [n.reason for n in result.notebooks if n.reason]
        text = visible.summary(tests)
        if notes:
            text += f" ({'; '.join(notes)})"
        return {"tests": visible.as_dicts(tests), "passed": sum(t.passed for t in tests), "total": len(tests),
                "message": text}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for ex in self._executors:
            try:
                ex.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.exception("closing an instant-feedback executor failed")
