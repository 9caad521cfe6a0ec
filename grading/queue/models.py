"""Tables of the durable grading job queue (own declarative base, own alembic branch "jobs")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..clock import naive_utcnow

QUEUED, LEASED, APPLYING, DONE, DEAD, SUPERSEDED = "queued", "leased", "applying", "done", "dead", "superseded"


class JobsBase(DeclarativeBase):
    """The queue's tables (alembic branch "jobs"): `grading_jobs`, `grading_job_events`. No naming
    convention: its migrations let the database name constraints, and the models must match them."""


class GradingJob(JobsBase):
    __tablename__ = "grading_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    course_id: Mapped[str] = mapped_column(String(128))
    assignment: Mapped[str] = mapped_column(String(128))
    student: Mapped[str] = mapped_column(String(256))
    #: what the executor needs to find the submission (e.g. {"course_dir": ...}); never secrets
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    available_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: changes at every lease: a worker whose lease was taken over can no longer complete or fail
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the executor's result (status, per-notebook scores and notebooks), kept until applied
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_grading_jobs_ready", "status", "available_at"),
        Index("ix_grading_jobs_key", "course_id", "assignment", "student"),
    )


class GradingJobEvent(JobsBase):
    """What happened to a job, in order: enqueued, leased, heartbeat-expired, failed, applied,
    dead, superseded. Staff read it; tests use it to check a result was applied exactly once."""

    __tablename__ = "grading_job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
