"""Exchange tables: releases, submissions, feedback, events.

Revision ID: exch_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "exch_0001"
down_revision = None
branch_labels = ("exchange",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("assignment_id", sa.String(64), nullable=False),
        sa.Column("blob_path", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("notebooks", sa.JSON(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=False),
        sa.Column("released_by", sa.String(128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("unreleased_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_releases"),
    )
    op.create_index("ix_exchange_releases_course_assignment", "exchange_releases",
                    ["course_id", "assignment_id", "active"])
    op.create_table(
        "exchange_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("assignment_id", sa.String(64), nullable=False),
        sa.Column("student_id", sa.String(128), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("timestamp", sa.String(64), nullable=False),
        sa.Column("upload_id", sa.String(64), nullable=False),
        sa.Column("blob_path", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("notebooks", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("seconds_late", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_submissions"),
        sa.UniqueConstraint("course_id", "student_id", "upload_id", name="uq_exchange_submissions_upload"),
    )
    op.create_index("ix_exchange_submissions_lookup", "exchange_submissions",
                    ["course_id", "assignment_id", "student_id", "submitted_at"])
    op.create_table(
        "exchange_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("notebook_id", sa.String(255), nullable=False),
        sa.Column("blob_path", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=False),
        sa.Column("released_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["exchange_submissions.id"], ondelete="CASCADE",
                                name="fk_exchange_feedback_submission_id_exchange_submissions"),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_feedback"),
        sa.UniqueConstraint("submission_id", "notebook_id", name="uq_exchange_feedback_notebook"),
    )
    op.create_table(
        "exchange_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("assignment_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_events"),
    )
    op.create_index("ix_exchange_events_course_at", "exchange_events", ["course_id", "at"])


def downgrade() -> None:
    op.drop_table("exchange_events")
    op.drop_table("exchange_feedback")
    op.drop_index("ix_exchange_submissions_lookup", table_name="exchange_submissions")
    op.drop_table("exchange_submissions")
    op.drop_index("ix_exchange_releases_course_assignment", table_name="exchange_releases")
    op.drop_table("exchange_releases")
