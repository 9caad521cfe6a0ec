"""The LTI tables as coursehub created them before migrations (identities, launch services, nonces,
the LMS's user ids, dynamic registrations, their links and states)

Revision ID: lti_0001
Revises:
Create Date: 2026-12-05

An install made before this migration existed has these tables already (made by `create_all`):
schema.upgrade creates whichever are missing and stamps this revision instead of running it.
"""

import sqlalchemy as sa
from alembic import op

revision = "lti_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coursehub_lti_nonces",
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_coursehub_lti_nonces_expires_at", "coursehub_lti_nonces", ["expires_at"])
    op.create_table(
        "coursehub_lti_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(512), nullable=False),
        sa.Column("email", sa.String(512), nullable=False),
        sa.Column("link_value", sa.String(512), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_coursehub_lti_identity"),
    )
    op.create_index("ix_coursehub_lti_identities_username", "coursehub_lti_identities", ["username"])
    op.create_index("ix_coursehub_lti_identities_link_value", "coursehub_lti_identities", ["link_value"])
    op.create_table(
        "coursehub_lti_launch_services",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("course", sa.String(64), primary_key=True),
        sa.Column("platform", sa.String(128), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("client_id", sa.String(512), nullable=False),
        sa.Column("deployment_id", sa.String(512), nullable=False),
        sa.Column("context_id", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("ags", sa.Text(), nullable=True),
        sa.Column("nrps", sa.Text(), nullable=True),
        sa.Column("resource_links", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "coursehub_lti_platform_user_ids",
        sa.Column("issuer", sa.String(512), primary_key=True),
        sa.Column("subject", sa.String(512), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "coursehub_lti_registrations",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "coursehub_lti_registration_links",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "coursehub_lti_registration_states",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("coursehub_lti_registration_states", "coursehub_lti_registration_links",
                  "coursehub_lti_registrations", "coursehub_lti_platform_user_ids",
                  "coursehub_lti_launch_services", "coursehub_lti_identities", "coursehub_lti_nonces"):
        op.drop_table(table)
