"""The LTI database's tables, in one place: what store.py (nonces, identities, launch services, the
LMS's own user ids) and registration_store.py (dynamic registrations, their links and states) read
and write, and what the migrations (migrations/, schema.py) keep in step. The hub's own database is
not ours to extend; see store.py for why these live apart.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

nonces = sa.Table(
    "coursehub_lti_nonces", metadata,
    sa.Column("nonce", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

identities = sa.Table(
    "coursehub_lti_identities", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    #: The LTI issuer, or "sso:<provider>" for campus sign-in.
    sa.Column("issuer", sa.String(512), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("username", sa.String(255), nullable=False, index=True),
    sa.Column("display_name", sa.String(512), nullable=False, default=""),
    sa.Column("email", sa.String(512), nullable=False, default=""),
    #: Value of the configured account-linking claim (only stored when linking is on).
    sa.Column("link_value", sa.String(512), nullable=True, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("issuer", "subject", name="uq_coursehub_lti_identity"),
)

launch_services = sa.Table(
    "coursehub_lti_launch_services", metadata,
    sa.Column("username", sa.String(255), primary_key=True),
    sa.Column("course", sa.String(64), primary_key=True),
    sa.Column("platform", sa.String(128), nullable=False),
    sa.Column("issuer", sa.String(512), nullable=False),
    sa.Column("client_id", sa.String(512), nullable=False),
    sa.Column("deployment_id", sa.String(512), nullable=False),
    sa.Column("context_id", sa.String(512), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    #: JSON: {"lineitems", "lineitem", "scope"} of the AGS endpoint claim, or null.
    sa.Column("ags", sa.Text, nullable=True),
    #: JSON: {"context_memberships_url", "service_versions"} of the NRPS claim, or null.
    sa.Column("nrps", sa.Text, nullable=True),
    #: JSON: {resource_link_id: {"lineitem": url, "title": ...}} seen for this user and course.
    sa.Column("resource_links", sa.Text, nullable=False, default="{}"),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: The LMS's own user id where it differs from the LTI `sub` (Canvas's numeric id, sent as the custom
#: parameter `canvas_user_id`): what the LMS's gradebook import matches students by.
platform_user_ids = sa.Table(
    "coursehub_lti_platform_user_ids", metadata,
    sa.Column("issuer", sa.String(512), primary_key=True),
    sa.Column("subject", sa.String(512), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

registrations = sa.Table(
    "coursehub_lti_registrations", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.String(512), nullable=False),
    #: JSON of LaunchRegistration.to_dict().
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

links = sa.Table(
    "coursehub_lti_registration_links", metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    #: The platform name the admin chose ('' = from the LMS's host).
    sa.Column("name", sa.String(64), nullable=False, default=""),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


#: The state of each stored registration: pending when it arrives, then the operators' decisions
#: (`coursehub lti approve|reject NAME`). No row: active (registrations stored before approval
#: existed were active on arrival, and an upgrade must not switch them off).
states = sa.Table(
    "coursehub_lti_registration_states", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("changed_by", sa.String(255), nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
)
