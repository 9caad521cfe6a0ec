"""LMS sync tables: score outbox, line items, roster (branch "lms", independent of the others)

Revision ID: lms_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "lms_0001"
down_revision = None
branch_labels = ("lms",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lms_score_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment", sa.String(128), nullable=False),
        sa.Column("student", sa.String(255), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("score_given", sa.Float(), nullable=True),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("activity_progress", sa.String(32), nullable=False),
        sa.Column("grading_progress", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("produced_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lineitem_url", sa.Text(), nullable=True),
        sa.Column("lti_user_id", sa.String(512), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lms_score_outbox"),
        sa.UniqueConstraint("course_id", "assignment", "student", "produced_at", name="uq_lms_score_outbox_grade"),
    )
    op.create_index("ix_lms_score_outbox_due", "lms_score_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_lms_score_outbox_key", "lms_score_outbox", ["course_id", "assignment", "student"])
    op.create_table(
        "lms_lineitems",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("lineitems_url", sa.String(1024), nullable=False),
        sa.Column("assignment", sa.String(128), nullable=False),
        sa.Column("lineitem_url", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "lineitems_url", "assignment", name="pk_lms_lineitems"),
    )
    op.create_table(
        "lms_roster",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("lti_user_id", sa.String(512), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("email", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("course_id", "issuer", "lti_user_id", name="pk_lms_roster"),
    )


def downgrade() -> None:
    op.drop_table("lms_roster")
    op.drop_table("lms_lineitems")
    op.drop_index("ix_lms_score_outbox_key", table_name="lms_score_outbox")
    op.drop_index("ix_lms_score_outbox_due", table_name="lms_score_outbox")
    op.drop_table("lms_score_outbox")
