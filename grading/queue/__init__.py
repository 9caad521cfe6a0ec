"""Durable grading job queue (SQLite or PostgreSQL), with leases, retries and a dead-letter list.

API for the grading service (``from coursehub.grading.queue import JobQueue``)::

    q = JobQueue(db_url, max_attempts=settings.grading.max_attempts)
    q.create_tables()                  # or: alembic upgrade heads (revision in grading/migrations/jobs)
    job_id = q.enqueue(course_id, assignment, student, payload={"course_dir": "/srv/courses/demo-101"})

    # worker side (see worker.QueueWorker, which does all of this)
    lease = q.lease("worker-1", lease_seconds=60)      # None when nothing is ready
    q.heartbeat(lease, lease_seconds=60)               # while grading; False => lost the lease, stop
    q.complete(lease, result, apply=write_gradebook)   # True once; False if stale/superseded
    q.fail(lease, "error text")                        # retry with backoff, dead after max_attempts

    # staff side
    q.dead_letters(course_id)  ;  q.retry_dead(job_id)  ;  q.counts()  ;  q.events(job_id)

Guarantees:
- A job is leased by one worker at a time (PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED; SQLite:
  BEGIN IMMEDIATE serializes the lease). A lease has an expiry; a worker that dies (SIGKILL) stops
  heart-beating, the lease expires and another worker takes the job (one more attempt).
- Every lease gets a new token; complete/fail with an old token do nothing, so a worker that was
  presumed dead cannot apply a result after its job was handed on.
- The result is stored before it is applied and the job is marked done after; `apply` is idempotent
  (gradebook values are set, not added), so each result takes effect exactly once.
- A grader fault (not a student's error: those are grades) is retried after 5 s, 10 s, 20 s ... and
  after max_attempts the job lands in the dead-letter list, visible to staff; other jobs keep flowing.
- Regrades: enqueueing a submission again supersedes older waiting jobs; an older job finishing
  after a newer one was applied is recorded as superseded and not applied.
"""

from .api import JobQueue, Lease, backoff_seconds
from .models import GradingJob, GradingJobEvent, JobsBase

__all__ = ["GradingJob", "GradingJobEvent", "JobQueue", "JobsBase", "Lease", "backoff_seconds"]
