"""The autograde worker waits out a write-locked grading database (for longer than SQLite's 30 s
busy timeout) with bounded backoff and a metric, and never exits because of it."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, event

from coursehub.grading import metrics
from coursehub.grading.autograde.grader import SubmissionResult
from coursehub.grading.queue import JobQueue
from coursehub.grading.queue import worker as worker_mod
from coursehub.grading.queue.worker import QueueWorker


def quick_lock_engine(url: str):  # noqa: ANN201
    """The queue's SQLite engine, but giving up on a lock after 50 ms instead of 30 s."""
    engine = create_engine(url, connect_args={"timeout": 0.05})

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record):
        conn.isolation_level = None
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=50")

    @event.listens_for(engine, "begin")
    def _immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class FakeGradingWorker(QueueWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.applied: list[int] = []

    def grade(self, lease):
        return SubmissionResult(lease.student, lease.assignment, "graded")

    def apply(self, lease, result):
        self.applied.append(lease.job_id)


class NoExecutor:
    def close(self) -> None:
        pass


def held_lock(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_worker_waits_out_a_long_write_lock_and_grades(tmp_path):
    path = str(tmp_path / "grading.sqlite")
    setup = JobQueue(f"sqlite:///{path}")
    setup.create_tables()
    job = setup.enqueue("c1", "ps1", "alice", {})
    setup.engine.dispose()

    queue = JobQueue(quick_lock_engine(f"sqlite:///{path}"))
    lock = held_lock(path)
    waits: list[float] = []

    def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if sum(waits) > 60 and lock is not None and lock.in_transaction:  # a minute of (fake) lock
            lock.execute("ROLLBACK")

    busy_before = metrics.DB_BUSY.labels("worker")._value.get()
    worker = FakeGradingWorker(queue, NoExecutor(), sleep=fake_sleep, lease_seconds=60)
    assert worker.run_once() is True  # did not raise while the lock was held
    assert worker.applied == [job]
    assert queue.get(job).status == "done"
    assert sum(waits) > 30 and len(waits) >= 4
    assert max(waits) <= worker_mod.DB_WAIT_CAP  # bounded
    assert waits == sorted(waits)  # backing off, not hammering
    assert metrics.DB_BUSY.labels("worker")._value.get() - busy_before == len(waits)
    lock.close()


def test_lock_during_apply_keeps_the_result_and_applies_it_once(tmp_path):
    path = str(tmp_path / "grading.sqlite")
    setup = JobQueue(f"sqlite:///{path}")
    setup.create_tables()
    job = setup.enqueue("c1", "ps1", "bob", {})
    setup.engine.dispose()
    queue = JobQueue(quick_lock_engine(f"sqlite:///{path}"))
    locks: list[sqlite3.Connection] = []

    class LockWhileGrading(FakeGradingWorker):
        def grade(self, lease):
            locks.append(held_lock(path))  # someone takes the write lock while we grade
            return super().grade(lease)

    def fake_sleep(seconds: float) -> None:
        if len(waits) == 3:
            locks[0].execute("ROLLBACK")
        waits.append(seconds)

    waits: list[float] = []
    worker = LockWhileGrading(queue, NoExecutor(), sleep=fake_sleep)
    assert worker.run_once() is True
    assert worker.applied == [job] and queue.get(job).status == "done"
    assert len(waits) >= 3
    locks[0].close()


def test_run_loop_survives_the_lock_and_stops_on_request(tmp_path):
    path = str(tmp_path / "grading.sqlite")
    setup = JobQueue(f"sqlite:///{path}")
    setup.create_tables()
    setup.engine.dispose()
    queue = JobQueue(quick_lock_engine(f"sqlite:///{path}"))
    lock = held_lock(path)
    waits: list[float] = []
    worker = FakeGradingWorker(queue, NoExecutor())

    def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 10:
            worker.stop.set()  # SIGTERM while waiting

    worker.sleep = fake_sleep
    worker.run(max_idle=0)  # returns quietly, no exception
    assert len(waits) == 10
    lock.execute("ROLLBACK")
    lock.close()
