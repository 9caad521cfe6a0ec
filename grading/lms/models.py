"""Tables of the LMS sync (alembic branch "lms", `grading/migrations/lms/`): its own declarative
Base so it can share the grading database without depending on the exchange's models."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..clock import naive_utcnow
from ..db import NAMING


class Base(DeclarativeBase):
    """The LMS sync's tables (alembic branch "lms"): `lms_score_outbox`, `lms_lineitems`, `lms_roster`."""

    metadata = MetaData(naming_convention=NAMING)


class ScoreRow(Base):
    """One grade on its way to the LMS. Rows are never deleted: the outbox is also the sync log.

    status: pending (to send, maybe after `next_attempt_at`), sent, failed (needs a person: the
    retry button), superseded (a newer grade for the same student and assignment exists),
    invalid (did not pass validation, never sent).
    """

    __tablename__ = "lms_score_outbox"
    __table_args__ = (
        UniqueConstraint("course_id", "assignment", "student", "produced_at", name="uq_lms_score_outbox_grade"),
        Index("ix_lms_score_outbox_due", "status", "next_attempt_at"),
        Index("ix_lms_score_outbox_key", "course_id", "assignment", "student"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    course_id: Mapped[str] = mapped_column(String(128))
    assignment: Mapped[str] = mapped_column(String(128))
    #: Hub username (= nbgrader student id).
    student: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255), default="")
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float] = mapped_column(Float)
    activity_progress: Mapped[str] = mapped_column(String(32), default="Completed")
    grading_progress: Mapped[str] = mapped_column(String(32), default="FullyGraded")
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: When the grade was produced: the AGS timestamp, and what "newest" means.
    produced_at: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=naive_utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lineitem_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    lti_user_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=naive_utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class LineItemRow(Base):
    """The LMS line item of an assignment in one LMS context (platform issuer + line items URL).

    The row is also the claim that makes creation single: whoever inserts it (status "claimed")
    before the POST is the only one who may create the item; everyone else waits for `lineitem_url`.
    A claim whose holder died lapses at `claimed_until`. `label`/`score_maximum` are what the LMS has,
    so a change in course.yaml is seen and sent (PUT).
    """

    __tablename__ = "lms_lineitems"

    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    lineitems_url: Mapped[str] = mapped_column(String(1024), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(128), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(128))
    lineitem_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    score_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=naive_utcnow)


class RosterRow(Base):
    """A person NRPS listed for a course. People who leave are marked (`left_at`), never deleted."""

    __tablename__ = "lms_roster"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    lti_user_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(512), default="")
    email: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=naive_utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=naive_utcnow)
    left_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: When the course's groups were taken from a leaver (staff at once, students after the grace).
    access_ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
