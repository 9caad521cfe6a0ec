"""Submissions remember the environment and kernel the student's server reported (environment parity)

Revision ID: exch_0002
Revises: exch_0001
Create Date: 2026-12-04

Both columns are nullable: submissions stored before this revision (and those from clients that do
not send them) have none, and are graded without a parity check.
"""

import sqlalchemy as sa
from alembic import op

revision = "exch_0002"
down_revision = "exch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange_submissions") as b:
        b.add_column(sa.Column("environment", sa.String(64), nullable=True))
        b.add_column(sa.Column("kernel", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange_submissions") as b:
        b.drop_column("kernel")
        b.drop_column("environment")
