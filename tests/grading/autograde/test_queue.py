"""The durable job queue on SQLite and PostgreSQL: leases, heartbeats, exactly-once apply,
retries with backoff, dead letters and regrades."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from coursehub.grading.queue import JobQueue, backoff_seconds
from coursehub.grading.queue.models import APPLYING, DEAD, DONE, LEASED, QUEUED, SUPERSEDED


class FakeClock:
    """The queue's now, advanced by hand: leases expire and backoffs pass without sleeping."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 9, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def q(db_url, clock):
    queue = JobQueue(db_url, max_attempts=3, backoff_base=0.0, clock=clock)
    queue.create_tables()
    yield queue
    queue.engine.dispose()


def test_a_job_is_leased_by_one_worker_only(q):
    jid = q.enqueue("c", "ps1", "alice", {"course_dir": "/x"})
    a = q.lease("w1", lease_seconds=30)
    assert a is not None and a.job_id == jid and a.attempt == 1 and a.payload == {"course_dir": "/x"}
    assert q.lease("w2", lease_seconds=30) is None
    assert q.get(jid).status == LEASED


def test_concurrent_workers_never_share_a_job(q):
    ids = {q.enqueue("c", "ps1", f"s{i}") for i in range(20)}
    got: list[int] = []
    lock = threading.Lock()

    def worker(name):
        while (lease := q.lease(name, 30)) is not None:
            with lock:
                got.append(lease.job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)  # every job once, none twice


def test_result_is_applied_exactly_once(q):
    q.enqueue("c", "ps1", "alice")
    lease = q.lease("w1", 30)
    applied = []
    assert q.complete(lease, {"status": "graded"}, apply=lambda le, r: applied.append(le.job_id)) is True
    assert q.complete(lease, {"status": "graded"}, apply=lambda le, r: applied.append(le.job_id)) is False
    assert applied == [lease.job_id]
    assert q.get(lease.job_id).status == DONE
    assert [e for _, e in q.events(lease.job_id)].count("applied") == 1


def test_expired_lease_goes_to_another_worker_and_the_old_one_cannot_complete(q, clock):
    jid = q.enqueue("c", "ps1", "alice")
    old = q.lease("w1", lease_seconds=60)
    clock.advance(59)
    assert q.lease("w2", lease_seconds=30) is None  # not expired yet
    clock.advance(2)  # w1 "died": no heartbeat
    new = q.lease("w2", lease_seconds=30)
    assert new is not None and new.job_id == jid and new.attempt == 2
    applied = []
    assert q.heartbeat(old) is False
    assert q.complete(old, {"status": "graded"}, apply=lambda *a: applied.append("old")) is False
    assert q.fail(old, "late") is None
    assert q.complete(new, {"status": "graded"}, apply=lambda *a: applied.append("new")) is True
    assert applied == ["new"]


def test_heartbeat_keeps_the_lease(q, clock):
    q.enqueue("c", "ps1", "alice")
    lease = q.lease("w1", lease_seconds=60)
    for _ in range(3):
        clock.advance(45)
        assert q.heartbeat(lease, lease_seconds=60)
    assert q.lease("w2", 30) is None
    clock.advance(61)  # heartbeats stop: the lease runs out
    assert q.lease("w2", 30) is not None


def test_failures_retry_with_backoff_then_dead_letter(db_url, clock):
    q = JobQueue(db_url, max_attempts=2, backoff_base=30, clock=clock)
    q.create_tables()
    jid = q.enqueue("c", "ps1", "crasher")
    other = q.enqueue("c", "ps1", "fine")
    first = q.lease("w1", 30)
    assert first.job_id == jid
    assert q.fail(first, "Boom: grader crashed") == QUEUED
    # while the crasher backs off, the other job is served
    nxt = q.lease("w1", 30)
    assert nxt.job_id == other
    assert q.complete(nxt, {"status": "graded"})
    assert q.lease("w1", 30) is None  # still backing off
    clock.advance(29)
    assert q.lease("w1", 30) is None
    clock.advance(2)
    second = q.lease("w1", 30)
    assert second.job_id == jid and second.attempt == 2
    assert q.fail(second, "Boom again") == DEAD
    dead = q.dead_letters("c")
    assert [d.id for d in dead] == [jid] and "Boom again" in dead[0].last_error
    assert q.lease("w1", 30) is None
    assert q.retry_dead(jid) and q.lease("w1", 30).job_id == jid
    q.engine.dispose()


def test_a_worker_dying_on_every_attempt_ends_in_dead_letters(db_url, clock):
    q = JobQueue(db_url, max_attempts=2, backoff_base=0.0, clock=clock)
    q.create_tables()
    jid = q.enqueue("c", "ps1", "killer")
    for _ in range(2):
        assert q.lease("w", lease_seconds=60) is not None
        clock.advance(61)
    assert q.lease("w", 30) is None
    assert q.get(jid).status == DEAD
    q.engine.dispose()


def test_backoff_grows_and_is_capped():
    assert [backoff_seconds(i) for i in (1, 2, 3)] == [5, 10, 20]
    assert backoff_seconds(30) == 600


def test_regrade_supersedes_waiting_job(q):
    old = q.enqueue("c", "ps1", "alice")
    new = q.enqueue("c", "ps1", "alice")
    assert q.get(old).status == SUPERSEDED and q.get(old).superseded_by == new
    assert q.lease("w", 30).job_id == new


def test_a_batch_enqueues_as_the_same_calls_one_by_one_would(db_url, clock, tmp_path):
    """A collect's batch (one transaction) ends in the same jobs, states and supersessions as one
    `enqueue` per submission: waiting jobs from before are superseded, a running one is not, a
    student twice in the batch keeps only the later job, other assignments are untouched."""
    one_by_one = JobQueue(f"sqlite:///{tmp_path / 'sequential.sqlite'}", clock=clock)
    one_by_one.create_tables()
    batched = JobQueue(db_url, clock=clock)
    batched.create_tables()
    items = [("alice", {"submission_id": 3}), ("bob", {"submission_id": 4}), ("carol", None),
             ("alice", {"submission_id": 5})]
    states = []
    for queue, batch in ((one_by_one, False), (batched, True)):
        queue.enqueue("c", "ps1", "alice", {"submission_id": 1})  # running (leased below): not superseded
        queue.enqueue("c", "ps1", "bob", {"submission_id": 2})  # waiting: superseded by the batch
        running = queue.lease("w", 30)  # the oldest job: alice's
        queue.enqueue("c", "ps2", "carol")  # another assignment: untouched
        ids = (queue.enqueue_many("c", "ps1", items) if batch
               else [queue.enqueue("c", "ps1", student, payload) for student, payload in items])
        assert len(ids) == 4 and ids == sorted(ids)
        with queue.session() as s:
            from coursehub.grading.queue.models import GradingJob

            jobs = s.query(GradingJob).order_by(GradingJob.id).all()
            first = jobs[0].id
            states.append([(j.id - first, j.assignment, j.student, j.status, j.payload,
                            j.superseded_by - first if j.superseded_by else None) for j in jobs])
        assert running.student == "alice" and queue.get(running.job_id).status == LEASED
        assert [queue.get(i).status for i in ids] == [SUPERSEDED, QUEUED, QUEUED, QUEUED]
    assert states[0] == states[1]
    assert batched.enqueue_many("c", "ps1", []) == []


def test_older_result_finishing_after_a_newer_one_is_not_applied(q):
    old = q.enqueue("c", "ps1", "alice")
    old_lease = q.lease("w1", 30)
    new = q.enqueue("c", "ps1", "alice")  # regrade while the old one runs
    new_lease = q.lease("w2", 30)
    applied = []
    assert q.complete(new_lease, {"v": 2}, apply=lambda le, r: applied.append(r["v"]))
    assert not q.complete(old_lease, {"v": 1}, apply=lambda le, r: applied.append(r["v"]))
    assert applied == [2]
    assert q.get(old).status == SUPERSEDED and q.get(new).status == DONE


def test_result_stored_before_apply_survives_a_crash_during_apply(q, clock):
    jid = q.enqueue("c", "ps1", "alice")
    lease = q.lease("w1", lease_seconds=60)

    def crash(*_):
        raise SystemExit("worker killed while writing the gradebook")

    with pytest.raises(SystemExit):
        q.complete(lease, {"status": "graded", "notebooks": []}, apply=crash)
    assert q.get(jid).status == APPLYING
    clock.advance(61)
    again = q.lease("w2", 30)
    assert again.job_id == jid and again.result == {"status": "graded", "notebooks": []}
    assert again.attempt == 1  # not graded again: the stored result is applied
    applied = []
    assert q.complete(again, again.result, apply=lambda *a: applied.append(1))
    assert applied == [1] and q.get(jid).status == DONE
