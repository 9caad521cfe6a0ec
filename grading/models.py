"""The exchange's database: releases, submissions, feedback and an event log.

Rows make stored blobs visible: a blob without a row is invisible (and swept), a row is committed
only after its blob is durable. Times are UTC, from the service's clock. Other parts of the grading
service add their own tables on their own alembic branches (`jobs`, `lms`) over the same `Base`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .db import NAMING


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in every database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None


class Base(DeclarativeBase):
    """The exchange's tables (alembic branch in `migrations/versions/`): `exchange_releases`,
    `exchange_submissions`, `exchange_feedback`, `exchange_events`."""

    metadata = MetaData(naming_convention=NAMING)


class Release(Base):
    """One release of an assignment; at most one per (course, assignment) is active."""

    __tablename__ = "exchange_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[str] = mapped_column(String(64))
    assignment_id: Mapped[str] = mapped_column(String(64))
    blob_path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    notebooks: Mapped[list] = mapped_column(JSON)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_by: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    unreleased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_exchange_releases_course_assignment", "course_id", "assignment_id", "active"),)


class Submission(Base):
    """One submission; every one is kept. `timestamp` is the nbgrader string of `submitted_at`."""

    __tablename__ = "exchange_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[str] = mapped_column(String(64))
    assignment_id: Mapped[str] = mapped_column(String(64))
    student_id: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    timestamp: Mapped[str] = mapped_column(String(64))
    #: The client's retry key: a retried upload returns the first row instead of adding one.
    upload_id: Mapped[str] = mapped_column(String(64))
    blob_path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    notebooks: Mapped[list] = mapped_column(JSON)
    #: nbgrader's submission_secret.txt (feedback is matched with it), made by the service.
    secret: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    seconds_late: Mapped[int] = mapped_column(Integer, default=0)
    #: What the student's server reported (envparity): its environment's lock sha256 (or "default")
    #: and the submitted notebooks' kernel names; None from clients that do not send them.
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kernel: Mapped[str | None] = mapped_column(String(255), nullable=True)

    feedback: Mapped[list[Feedback]] = relationship(back_populates="submission", lazy="selectin")

    __table_args__ = (
        UniqueConstraint("course_id", "student_id", "upload_id", name="uq_exchange_submissions_upload"),
        Index("ix_exchange_submissions_lookup", "course_id", "assignment_id", "student_id", "submitted_at"),
    )


class Feedback(Base):
    """Released feedback for one notebook of one submission (re-releasing replaces it)."""

    __tablename__ = "exchange_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("exchange_submissions.id", ondelete="CASCADE"))
    notebook_id: Mapped[str] = mapped_column(String(255))
    blob_path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_by: Mapped[str] = mapped_column(String(128))

    submission: Mapped[Submission] = relationship(back_populates="feedback")

    __table_args__ = (UniqueConstraint("submission_id", "notebook_id", name="uq_exchange_feedback_notebook"),)


class Event(Base):
    """What happened in the exchange, by whom and when (for staff views and audits)."""

    __tablename__ = "exchange_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    course_id: Mapped[str] = mapped_column(String(64))
    assignment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_exchange_events_course_at", "course_id", "at"),)
