"""The queue operations. Every operation is one short transaction; see the package docstring."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from coursehub.platform.database import make_engine as _make_engine

from ..clock import naive_utcnow
from ..lms.retry import backoff_seconds as _backoff
from .models import (
    APPLYING,
    DEAD,
    DONE,
    LEASED,
    QUEUED,
    SUPERSEDED,
    GradingJob,
    GradingJobEvent,
    JobsBase,
)


@dataclass(frozen=True)
class Lease:
    """A job handed to one worker. `token` proves the lease is still this worker's."""

    job_id: int
    token: str
    attempt: int
    course_id: str
    assignment: str
    student: str
    payload: dict
    #: set when a previous attempt finished executing but died before applying: apply this
    result: dict | None = None


def make_engine(url: str) -> Engine:
    """The queue's engine: on SQLite every transaction takes the write lock at BEGIN (IMMEDIATE)."""
    return _make_engine(url, immediate_writes=True)


def backoff_seconds(attempt: int, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff before retry number `attempt` (1, 2, ...): 5 s, 10 s, 20 s ... <= 10 min."""
    return _backoff(attempt, base, cap, jitter=0)


class JobQueue:
    def __init__(self, engine: Engine | str, max_attempts: int = 3, backoff_base: float = 5.0,
                 clock: Callable[[], datetime] = naive_utcnow) -> None:
        """`clock` gives the queue's notion of now (UTC, naive); tests pass a fake one to let leases
        expire and backoffs pass without sleeping."""
        self.clock = clock
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.postgres = self.engine.dialect.name == "postgresql"

    def create_tables(self) -> None:
        """For tests and first runs before alembic is wired (the migration is grading/migrations/jobs)."""
        JobsBase.metadata.create_all(self.engine)

    @staticmethod
    def _event(s: Session, job: GradingJob, name: str, detail: str | None = None) -> None:
        s.add(GradingJobEvent(job_id=job.id, attempt=job.attempts, event=name, detail=detail))

    # -- producer side -----------------------------------------------------------------------------
    def enqueue(self, course_id: str, assignment: str, student: str, payload: dict | None = None) -> int:
        """Queue grading of one submission. A newer job for the same (course, assignment, student)
        supersedes older ones: those still waiting are dropped, and a running one's result will not be
        applied if this one is applied first."""
        return self.enqueue_many(course_id, assignment, [(student, payload)])[0]

    def enqueue_many(self, course_id: str, assignment: str, items: list[tuple[str, dict | None]]) -> list[int]:
        """`enqueue` for several students' submissions in one transaction (a collect's batch: one
        commit, not one per submission); job ids in the order of `items`. A student named twice
        gets two jobs, the second superseding the first, exactly as two `enqueue` calls would."""
        ids: list[int] = []
        with self.session.begin() as s:
            now = self.clock()
            jobs = [GradingJob(course_id=course_id, assignment=assignment, student=student, payload=payload or {},
                               status=QUEUED, attempts=0, max_attempts=self.max_attempts, available_at=now)
                    for student, payload in items]
            s.add_all(jobs)
            s.flush()
            newest: dict[str, GradingJob] = {}
            for job in jobs:  # within the batch, a later job of the same student supersedes an earlier one
                earlier = newest.get(job.student)
                if earlier is not None:
                    earlier.status, earlier.superseded_by, earlier.finished_at = SUPERSEDED, job.id, now
                    self._event(s, earlier, "superseded", f"by job {job.id}")
                newest[job.student] = job
                self._event(s, job, "enqueued")
                ids.append(job.id)
            first = min(job.id for job in jobs) if jobs else 0
            for start in range(0, len(newest), 500):  # waiting jobs queued before this batch
                chunk = list(newest)[start:start + 500]
                older = s.scalars(select(GradingJob).where(
                    GradingJob.course_id == course_id, GradingJob.assignment == assignment,
                    GradingJob.student.in_(chunk), GradingJob.id < first, GradingJob.status == QUEUED)).all()
                for o in older:
                    by = newest[o.student]
                    o.status, o.superseded_by, o.finished_at = SUPERSEDED, by.id, now
                    self._event(s, o, "superseded", f"by job {by.id}")
        return ids

    # -- worker side -------------------------------------------------------------------------------
    def lease(self, worker: str, lease_seconds: float = 60) -> Lease | None:
        """Take the oldest ready job (or one whose previous worker's lease expired)."""
        now = self.clock()
        with self.session.begin() as s:
            ready = (
                (GradingJob.status == QUEUED) & (GradingJob.available_at <= now)
            ) | (GradingJob.status.in_([LEASED, APPLYING]) & (GradingJob.lease_expires_at < now))
            q = select(GradingJob).where(ready).order_by(GradingJob.available_at, GradingJob.id).limit(1)
            if self.postgres:
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None:
                return None
            if job.status in (LEASED, APPLYING):
                self._event(s, job, "lease-expired", f"worker {job.lease_owner} stopped heart-beating")
                if job.status == LEASED and job.attempts >= job.max_attempts:
                    self._dead(s, job, job.last_error or "the worker died on every attempt")
                    return None
            job.attempts += 1 if job.status != APPLYING else 0
            job.status = APPLYING if job.status == APPLYING else LEASED
            job.lease_owner = worker
            job.lease_token = secrets.token_hex(16)
            job.lease_expires_at = now + timedelta(seconds=lease_seconds)
            self._event(s, job, "leased", worker)
            return Lease(job.id, job.lease_token, job.attempts, job.course_id, job.assignment, job.student,
                         dict(job.payload or {}), job.result if job.status == APPLYING else None)

    def heartbeat(self, lease: Lease, lease_seconds: float = 60) -> bool:
        """Extend the lease; False if it is no longer ours (expired and taken, or finished)."""
        with self.session.begin() as s:
            n = s.execute(update(GradingJob).where(
                GradingJob.id == lease.job_id, GradingJob.lease_token == lease.token,
                GradingJob.status.in_([LEASED, APPLYING]),
            ).values(lease_expires_at=self.clock() + timedelta(seconds=lease_seconds))).rowcount
            return n == 1

    def complete(self, lease: Lease, result: dict, apply: Callable[[Lease, dict], None] | None = None) -> bool:
        """Record the result and apply it once. Returns False (and applies nothing) when the lease is
        stale, the job is finished, or a newer job for the same submission was already applied.

        The result is stored first (status "applying"); if the worker dies during `apply`, the next
        lease hands the stored result over instead of grading again. `apply` must be idempotent
        (gradebook writes set values), which makes a repeat after such a crash harmless."""
        with self.session.begin() as s:
            job = s.get(GradingJob, lease.job_id, with_for_update=self.postgres)
            if job is None or job.lease_token != lease.token or job.status not in (LEASED, APPLYING):
                return False
            newer_applied = s.scalars(select(GradingJob.id).where(
                GradingJob.course_id == job.course_id, GradingJob.assignment == job.assignment,
                GradingJob.student == job.student, GradingJob.id > job.id, GradingJob.status == DONE)).first()
            if newer_applied is not None:
                job.status, job.superseded_by, job.finished_at = SUPERSEDED, newer_applied, self.clock()
                self._event(s, job, "superseded", f"job {newer_applied} was applied first")
                return False
            job.status, job.result = APPLYING, result
        if apply is not None:
            apply(lease, result)
        with self.session.begin() as s:
            job = s.get(GradingJob, lease.job_id, with_for_update=self.postgres)
            if job is None or job.lease_token != lease.token or job.status != APPLYING:
                return False
            job.status, job.finished_at, job.lease_token = DONE, self.clock(), None
            job.result = _summary(result)
            self._event(s, job, "applied", result.get("status"))
            return True

    def fail(self, lease: Lease, error: str, retry: bool = True) -> str | None:
        """The attempt failed (a grader fault, not the student's). Retry after a backoff, or move the
        job to the dead-letter list after max_attempts. Returns the new status (None if stale)."""
        with self.session.begin() as s:
            job = s.get(GradingJob, lease.job_id, with_for_update=self.postgres)
            if job is None or job.lease_token != lease.token or job.status not in (LEASED, APPLYING):
                return None
            job.last_error = error[-4000:]
            self._event(s, job, "failed", error[-500:])
            if not retry or job.attempts >= job.max_attempts:
                self._dead(s, job, error)
            else:
                job.status, job.lease_token, job.lease_owner = QUEUED, None, None
                job.available_at = self.clock() + timedelta(seconds=backoff_seconds(job.attempts, self.backoff_base))
            return job.status

    def _dead(self, s: Session, job: GradingJob, error: str) -> None:
        job.status, job.finished_at, job.lease_token = DEAD, self.clock(), None
        job.last_error = error[-4000:]
        self._event(s, job, "dead", error[-500:])

    # -- staff side --------------------------------------------------------------------------------
    def dead_letters(self, course_id: str | None = None) -> list[GradingJob]:
        with self.session() as s:
            q = select(GradingJob).where(GradingJob.status == DEAD).order_by(GradingJob.id)
            if course_id:
                q = q.where(GradingJob.course_id == course_id)
            return list(s.scalars(q))

    def retry_dead(self, job_id: int) -> bool:
        """Staff fixed the cause: give a dead job a fresh set of attempts."""
        with self.session.begin() as s:
            job = s.get(GradingJob, job_id)
            if job is None or job.status != DEAD:
                return False
            job.status, job.attempts, job.available_at, job.finished_at = QUEUED, 0, self.clock(), None
            self._event(s, job, "requeued")
            return True

    def get(self, job_id: int) -> GradingJob | None:
        with self.session() as s:
            return s.get(GradingJob, job_id)

    def events(self, job_id: int) -> list[tuple[int, str]]:
        with self.session() as s:
            return [(e.attempt, e.event) for e in s.scalars(
                select(GradingJobEvent).where(GradingJobEvent.job_id == job_id).order_by(GradingJobEvent.id))]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.session() as s:
            return dict(s.execute(select(GradingJob.status, func.count()).group_by(GradingJob.status)).all())


def _summary(result: dict) -> dict:
    """What stays in the queue after applying: status and scores, not the notebooks."""
    return {k: v for k, v in result.items() if k != "notebooks"} | {
        "notebooks": [{k: v for k, v in n.items() if k != "notebook"} for n in result.get("notebooks", [])]}
