"""Line items claimed before creation (one per platform, context and assignment), their LMS label and
maximum; roster rows remember when a leaver's access ended and their given/family names

Revision ID: lms_0002
Revises: lms_0001
Create Date: 2026-12-04

`lms_lineitems` was a cache of line item URLs: it is rebuilt with the issuer in its key. The next send
re-lists the LMS's line items by resourceId, so nothing is duplicated by dropping the old rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "lms_0002"
down_revision = "lms_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("lms_lineitems")
    op.create_table(
        "lms_lineitems",
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("lineitems_url", sa.String(1024), nullable=False),
        sa.Column("assignment", sa.String(128), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("lineitem_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "lineitems_url", "assignment", name="pk_lms_lineitems"),
    )
    with op.batch_alter_table("lms_roster") as b:
        b.add_column(sa.Column("access_ended_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("given_name", sa.String(255), nullable=False, server_default=""))
        b.add_column(sa.Column("family_name", sa.String(255), nullable=False, server_default=""))
    with op.batch_alter_table("lms_roster") as b:
        b.alter_column("given_name", server_default=None)
        b.alter_column("family_name", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("lms_roster") as b:
        b.drop_column("family_name")
        b.drop_column("given_name")
        b.drop_column("access_ended_at")
    op.drop_table("lms_lineitems")
    op.create_table(
        "lms_lineitems",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("lineitems_url", sa.String(1024), nullable=False),
        sa.Column("assignment", sa.String(128), nullable=False),
        sa.Column("lineitem_url", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "lineitems_url", "assignment", name="pk_lms_lineitems"),
    )
