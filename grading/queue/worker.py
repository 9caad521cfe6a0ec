"""The queue worker: lease a job, grade it with the configured executor, apply the result once.

    python -m coursehub.grading.queue.worker --db-url sqlite:////srv/grading.sqlite [--slot N] [--once]

Job payload: {"course_dir": PATH} (an nbgrader course directory on this machine or its volume).
Grades go to that course's own gradebook through GradebookWriter (nbgrader's SaveAutoGrades).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from coursehub.grading.autograde.course import Course
from coursehub.grading.autograde.executors import Executor, make_executor
from coursehub.grading.autograde.gradebook import GradebookWriter
from coursehub.grading.autograde.grader import NotebookResult, SubmissionResult
from coursehub.grading.autograde.sources import SourceIndex

from .. import metrics
from .api import JobQueue, Lease

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
                 sleep: Callable[[float], object] | None = None) -> None:
        self.queue = queue
        self.executor = executor
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._courses: dict[str, tuple[Course, dict[str, SourceIndex]]] = {}
        self.stop = threading.Event()
        #: How the worker waits (tests inject a fake; by default an interruptible wait on `stop`).
        self.sleep = sleep or self.stop.wait

    def with_db(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(...)`, waiting and trying again (bounded backoff) while the database is locked or
        down: a write lock held for minutes must delay grading, never end the worker."""
        wait = DB_WAIT_FIRST
        while True:
            try:
                return fn(*args, **kwargs)
            except (OperationalError, DBAPIError) as e:
                if not db_unavailable(e) or self.stop.is_set():
                    raise
                metrics.DB_BUSY.labels("worker").inc()
                log.warning("grading database unavailable during %s (%s); trying again in %.1f s", what,
                            str(e.orig if hasattr(e, "orig") else e)[:200], wait)
                self.sleep(wait)
                wait = min(DB_WAIT_CAP, wait * 2)

    def _course(self, lease: Lease) -> Course:
        course_dir = lease.payload.get("course_dir")
        if not course_dir:
            raise ValueError(f"job {lease.job_id} has no course_dir in its payload")
        course_dir = str(Path(course_dir).resolve())
        if course_dir not in self._courses:
            self._courses[course_dir] = (Course(Path(course_dir)), {})
        return self._courses[course_dir][0]

    def _index(self, course: Course, assignment: str) -> SourceIndex:
        indexes = self._courses.setdefault(str(course.root), (course, {}))[1]
        if assignment not in indexes:
            course.ensure_assignment(assignment)
            indexes[assignment] = course.source_index(assignment)
        return indexes[assignment]

    def apply(self, lease: Lease, result: dict) -> None:
        course = self._course(lease)
        job = course.job(lease.student, lease.assignment, self._index(course, lease.assignment))
        files = dict(job.files)
        ts_file = course.submission_dir(lease.student, lease.assignment) / "timestamp.txt"
        if ts_file.is_file():
            files["timestamp.txt"] = ts_file.read_bytes()
        with GradebookWriter(course.db_url, course.course_id, course.root, course.config) as w:
            w.apply(result_from_dict(result), course.timestamp(lease.student, lease.assignment), files)

    def run_once(self) -> bool:
        """Handle one job if one is ready. Returns whether a job was handled."""
        lease = self.with_db("lease", self.queue.lease, self.name, self.lease_seconds)
        if lease is None:
            return False
        log.info("job %s (%s/%s) attempt %s", lease.job_id, lease.student, lease.assignment, lease.attempt)
        if lease.result is not None:  # a previous attempt graded but died before applying
            self.with_db("apply", self.queue.complete, lease, lease.result, apply=self.apply)
            return True
        beating = threading.Event()
        hb = threading.Thread(target=self._heartbeat, args=(lease, beating), daemon=True)
        hb.start()
        started = time.monotonic()
        try:
            result = self.grade(lease)
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
        index = self._index(course, lease.assignment)
        job = course.job(lease.student, lease.assignment, index)
        return self.executor.grade(job, index, course.config)

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
    from coursehub.platform.settings import load_settings

    p = argparse.ArgumentParser(prog="python -m coursehub.grading.queue.worker", description=__doc__.splitlines()[0])
    p.add_argument("--db-url", help="queue database (default: the grading database from the settings)")
    p.add_argument("--settings", type=Path)
    p.add_argument("--slot", type=int, default=0, help="sandbox slot (distinct per worker on one machine)")
    p.add_argument("--lease-seconds", type=float, default=60)
    p.add_argument("--poll-seconds", type=float, default=1.0)
    p.add_argument("--backoff-seconds", type=float, default=5.0, help="first retry delay (doubles each attempt)")
    p.add_argument("--exit-when-idle", type=float, default=None, help="stop after this many idle seconds")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve this worker's Prometheus metrics on 127.0.0.1:PORT (job durations, database waits)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    settings = load_settings(args.settings)
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
                         poll_seconds=args.poll_seconds)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the hub stops its services with these: finish quietly
        signal.signal(sig, lambda *_: worker.stop.set())
    try:
        worker.run(max_idle=args.exit_when_idle)
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
