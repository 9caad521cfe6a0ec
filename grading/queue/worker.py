"""The queue worker: lease a job, grade it with the configured executor, apply the result once.

    python -m coursehub.grading.queue.worker [--settings FILE] [--db-url URL] [--slot N] [--exit-when-idle SECONDS]

Job payload: {"course_dir": PATH, "submission_id": ID, "sha256": HEX}: the nbgrader course directory
(source, gradebook, config) on this machine or its volume, and the stored submission to grade, read
from the grading service's store and checksum verified (submission.py); a job without a
submission_id (queued by hand) grades the course's submitted/ folder. A job that cannot be graded
as named (checksum mismatch, unusable autograde config) is refused at once: a dead letter, never a score.
Grades go to that course's own gradebook through GradebookWriter (nbgrader's SaveAutoGrades).

Environment parity (envparity.py) is checked here, before any executor runs, with the worker's own
settings (the course catalog and each course's lock), whichever executor grades: a submission made
in another environment or kernel completes with the status `environment-mismatch` and no grade.
`"accept_environment_mismatch": true` in the payload (the dashboard's "Grade anyway" action) grades
it all the same, and the autograded folder records the environment it was graded in.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from coursehub.grading.autograde import steps
from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.environment import ParityCheck, course_id_of, stored_record
from coursehub.grading.autograde.executors import Executor, make_executor
from coursehub.grading.autograde.gradebook import GradebookWriter
from coursehub.grading.autograde.grader import NotebookResult, SubmissionJob, SubmissionResult
from coursehub.grading.autograde.sources import SourceIndex
from coursehub.grading.envparity import ACCEPT_MISMATCH, MISMATCH, RECORD_FILE, Parity

from .. import metrics
from ..lms.retry import backoff_seconds
from ..storage import BlobStore
from . import submission
from .api import JobQueue, Lease
from .submission import StoreReader, SubmissionRefused

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Waits between tries while the grading database is locked or down: doubling, at most the cap.
DB_WAIT_FIRST, DB_WAIT_CAP = 0.5, 30.0


def db_unavailable(exc: BaseException) -> bool:
    """A locked (SQLite busy) or unreachable database: worth waiting for, not a reason to exit."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def result_to_dict(r: SubmissionResult) -> dict:
    return dataclasses.asdict(r)


def result_from_dict(d: dict) -> SubmissionResult:
    nbs = [NotebookResult(**n) for n in d.get("notebooks", [])]
    return SubmissionResult(**{**d, "notebooks": nbs})


class QueueWorker:
    def __init__(self, queue: JobQueue, executor: Executor, name: str | None = None,
                 lease_seconds: float = 60, poll_seconds: float = 1.0,
                 sleep: Callable[[float], object] | None = None, store: BlobStore | None = None,
                 settings: Any = None) -> None:  # noqa: ANN401 - platform Settings
        self.queue = queue
        self.executor = executor
        #: the platform settings parity is checked with (courses_dir: the catalog and each course's
        #: lock); without them, an executor's own `settings` (the local one's); neither: no check
        self.settings = settings if settings is not None else getattr(executor, "settings", None)
        #: the grading service's submission store (jobs naming a submission_id are read from it)
        self.store = store
        #: job id -> (the job graded, its timestamp.txt): apply writes what was graded
        self._jobs: dict[int, tuple[SubmissionJob, bytes | None]] = {}
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._courses: dict[str, tuple[NbgraderCourse, dict[str, SourceIndex]]] = {}
        self.stop = threading.Event()
        #: How the worker waits (tests inject a fake; by default an interruptible wait on `stop`).
        self.sleep = sleep or self.stop.wait

    def with_db(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(...)`, waiting and trying again (bounded backoff) while the database is locked or
        down: a write lock held for minutes must delay grading, never end the worker."""
        tries = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except (OperationalError, DBAPIError) as e:
                if not db_unavailable(e) or self.stop.is_set():
                    raise
                metrics.DB_BUSY.labels("worker").inc()
                tries += 1
                wait = backoff_seconds(tries, DB_WAIT_FIRST, DB_WAIT_CAP, jitter=0)
                log.warning("grading database unavailable during %s (%s); trying again in %.1f s", what,
                            str(e.orig if hasattr(e, "orig") else e)[:200], wait)
                self.sleep(wait)

    def _course(self, lease: Lease) -> NbgraderCourse:
        course_dir = lease.payload.get("course_dir")
        if not course_dir:
            raise ValueError(f"job {lease.job_id} has no course_dir in its payload")
        course_dir = str(Path(course_dir).resolve())
        if course_dir not in self._courses:
            self._courses[course_dir] = (NbgraderCourse(Path(course_dir)), {})
        return self._courses[course_dir][0]

    def _index(self, course: NbgraderCourse, assignment: str) -> SourceIndex:
        indexes = self._courses.setdefault(str(course.root), (course, {}))[1]
        if assignment not in indexes:
            course.ensure_assignment(assignment)
            indexes[assignment] = course.source_index(assignment)
        return indexes[assignment]

    def _job(self, lease: Lease) -> tuple[SubmissionJob, bytes | None]:
        """The submission to grade and its timestamp.txt: the stored blob the job names (the
        grading service's copy, checksum verified), else (a job queued by hand) submitted/."""
        cached = self._jobs.get(lease.job_id)
        if cached is not None:
            return cached
        course = self._course(lease)
        index = self._index(course, lease.assignment)
        if submission.names_submission(lease):
            if self.store is None:
                raise SubmissionRefused(f"job {lease.job_id} names a stored submission, but this worker has no "
                                        "submission store (grading.storage_dir)")
            stored = self.with_db("read submission", submission.load, self.queue.engine, self.store, lease)
            job = course.job_from_files(lease.student, lease.assignment, index, stored.files)
            out = (job, stored.timestamp.encode())
        else:
            job = course.job(lease.student, lease.assignment, index)
            ts_file = course.submission_dir(lease.student, lease.assignment) / "timestamp.txt"
            out = (job, ts_file.read_bytes() if ts_file.is_file() else None)
        self._jobs = {lease.job_id: out}  # only the job in hand
        return out

    def apply(self, lease: Lease, result: dict) -> None:
        course = self._course(lease)
        job, timestamp = self._job(lease)
        files = dict(job.files)
        if timestamp is not None:
            files["timestamp.txt"] = timestamp
        parity = self._parity(course, lease, self._index(course, lease.assignment))
        if parity is not None:  # the environment the grade was made in
            files[RECORD_FILE] = parity.graded_record()
        with GradebookWriter(course.db_url, course.course_id, course.root, course.config) as w:
            w.apply(result_from_dict(result), _parse_timestamp(timestamp), files)

    def run_once(self) -> bool:
        """Handle one job if one is ready. Returns whether a job was handled."""
        lease = self.with_db("lease", self.queue.lease, self.name, self.lease_seconds)
        if lease is None:
            return False
        log.info("job %s (%s/%s) attempt %s", lease.job_id, lease.student, lease.assignment, lease.attempt)
        if lease.result is not None:  # a previous attempt graded but died before applying
            try:
                self.with_db("apply", self.queue.complete, lease, lease.result, apply=self.apply)
            except SubmissionRefused as e:  # the stored submission changed since it was graded
                log.error("job %s refused: %s", lease.job_id, e)
                self.with_db("fail", self.queue.fail, lease, f"refused, not applied: {e}", retry=False)
            return True
        beating = threading.Event()
        hb = threading.Thread(target=self._heartbeat, args=(lease, beating), daemon=True)
        hb.start()
        started = time.monotonic()
        try:
            result = self.grade(lease)
        except (SubmissionRefused, steps.PipelineError) as e:  # retrying cannot help: a dead letter now
            beating.set()
            metrics.JOB_DURATION.labels("failed").observe(time.monotonic() - started)
            log.error("job %s refused: %s", lease.job_id, e)
            self.with_db("fail", self.queue.fail, lease, f"refused, not graded: {e}", retry=False)
            return True
        except Exception as e:  # noqa: BLE001 - reported to the queue, which retries or dead-letters
            beating.set()
            metrics.JOB_DURATION.labels("failed").observe(time.monotonic() - started)
            log.exception("job %s failed", lease.job_id)
            self.with_db("fail", self.queue.fail, lease, f"{type(e).__name__}: {e}")
            return True
        beating.set()
        metrics.JOB_DURATION.labels("failed" if result.status == "failed" else "graded").observe(
            time.monotonic() - started)
        if result.status == "failed":
            self.with_db("fail", self.queue.fail, lease, result.error or "grader error")
        else:
            self.with_db("apply", self.queue.complete, lease, result_to_dict(result), apply=self.apply)
        return True

    def grade(self, lease: Lease) -> SubmissionResult:
        """Run the executor on the leased job's submission."""
        course = self._course(lease)
        steps.pipeline(course.config)  # the course's autograde steps: refused before anything runs
        index = self._index(course, lease.assignment)
        parity = self._parity(course, lease, index)
        if parity is not None and not parity.graded:  # made in another environment: a status, no grade
            return SubmissionResult(lease.student, lease.assignment, MISMATCH, error=parity.reason)
        job, _ = self._job(lease)
        return self.executor.grade(job, index, course.config)

    def _parity(self, course: NbgraderCourse, lease: Lease, index: SourceIndex) -> Parity | None:
        """The environment parity check of the leased submission (None: the worker has no settings).
        The job's `accept_environment_mismatch` (true only) is the instructor accepting a mismatch."""
        if self.settings is None:
            return None
        accept = lease.payload.get(ACCEPT_MISMATCH) is True
        check = ParityCheck.for_course(self.settings, course_id_of(course.config), index, accept)
        if submission.names_submission(lease) and isinstance(lease.payload.get("submission_id"), int):
            recorded = self.with_db("read submission", stored_record, self.queue.engine, lease.payload["submission_id"])
            return check.check_record(recorded, lease.student, lease.assignment)
        return check.check(course.submission_dir(lease.student, lease.assignment), lease.student, lease.assignment)

    def _heartbeat(self, lease: Lease, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                if not self.queue.heartbeat(lease, self.lease_seconds):
                    log.warning("job %s: lease lost", lease.job_id)
                    return
            except (OperationalError, DBAPIError) as e:
                if not db_unavailable(e):
                    raise
                metrics.DB_BUSY.labels("worker").inc()  # beat again next round; the lease has slack
                log.warning("job %s: heartbeat skipped, the grading database is unavailable", lease.job_id)

    def run(self, max_idle: float | None = None) -> None:
        idle_since = time.monotonic()
        while not self.stop.is_set():
            try:
                handled = self.run_once()
            except (OperationalError, DBAPIError) as e:
                if self.stop.is_set() and db_unavailable(e):
                    return  # asked to stop while waiting for the database
                raise
            if handled:
                idle_since = time.monotonic()
                continue
            if max_idle is not None and time.monotonic() - idle_since > max_idle:
                return
            self.stop.wait(self.poll_seconds)

    def close(self) -> None:
        self.executor.close()


def _parse_timestamp(text: bytes | None) -> datetime | None:
    """nbgrader's reading of a timestamp.txt (as CourseDirectory.get_existing_timestamp reads it)."""
    from nbgrader.utils import parse_utc

    return parse_utc(text.decode().strip()) if text and text.strip() else None


def wait_for_schema(queue: JobQueue, timeout: float) -> bool:
    """Beside the grading service, the service migrates the database (alembic heads): wait for it
    rather than create tables that alembic would then find in its way."""
    from coursehub.grading.db import schema_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = schema_status(queue.engine)
        if status.up_to_date:
            return True
        if not status.empty and status.current:
            log.error("the grading database schema is outdated; run: coursehub grading-db upgrade")
            return False
        time.sleep(1)
    log.error("the grading database was not created within %.0f s (is the grading service running?)", timeout)
    return False


def main(argv: list[str] | None = None) -> int:
    from coursehub.platform import service_runner

    p = service_runner.parser("python -m coursehub.grading.queue.worker", __doc__.splitlines()[0])
    p.add_argument("--db-url", help="queue database (default: the grading database from the settings)")
    p.add_argument("--slot", type=int, default=0, help="sandbox slot (distinct per worker on one machine)")
    p.add_argument("--lease-seconds", type=float, default=60)
    p.add_argument("--poll-seconds", type=float, default=1.0)
    p.add_argument("--backoff-seconds", type=float, default=5.0, help="first retry delay (doubles each attempt)")
    p.add_argument("--exit-when-idle", type=float, default=None, help="stop after this many idle seconds")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve this worker's Prometheus metrics on 127.0.0.1:PORT (job durations, database waits)")
    return service_runner.run(argv, p, _work)


def _work(args: argparse.Namespace, settings: Any, stop: Any) -> int:  # noqa: ANN401 - Settings, service_runner.Stop
    """The worker's body: started, logged and stopped like the other services (service_runner)."""
    if settings.grading.executor == "local":
        from coursehub.grading.sandbox.bwrap import check

        problem = check()
        if problem:
            log.error("the grading sandbox cannot run: %s", problem)
            return 1
    queue = JobQueue(args.db_url or settings.grading_db_url(), max_attempts=settings.grading.max_attempts,
                     backoff_base=args.backoff_seconds)
    if args.db_url:
        queue.create_tables()  # a standalone queue database (tests, benchmarks); no-op if it exists
    elif not wait_for_schema(queue, timeout=120):
        return 1
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=metrics.REGISTRY)
    worker = QueueWorker(queue, make_executor(settings, slot=args.slot), lease_seconds=args.lease_seconds,
                         poll_seconds=args.poll_seconds, store=StoreReader(settings.storage_dir()), settings=settings)
    stop.on_stop(worker.stop.set)  # SIGTERM/SIGINT: finish the job in hand, then exit
    try:
        worker.run(max_idle=args.exit_when_idle)
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
