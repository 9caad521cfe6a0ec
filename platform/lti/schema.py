"""The LTI database's schema, kept by alembic (platform/lti/migrations/), like the grading database's.

Every process that opens the LTI store (the hub, the grading service's LMS sync, `coursehub lti`)
brings it to the newest revision first: one at a time (SQLite: a write transaction taken at BEGIN;
PostgreSQL: an advisory lock inside the transaction), so the first to come migrates and the others
find it done. An install from before migrations (tables made by `create_all`) gets the tables it
lacks and is stamped at the baseline revision, then upgraded like any other.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..database import make_engine, schema_change

MIGRATIONS = Path(__file__).parent / "migrations"
#: Its own version table: the LTI tables may share a database with the hub's or the grading service's.
VERSION_TABLE = "coursehub_lti_alembic_version"
#: The revision whose tables `create_all` made before migrations existed.
BASELINE = "lti_0001"
#: pg_advisory_xact_lock key of "one process migrates the LTI tables at a time".
_PG_LOCK = 0x6C7469  # "lti"


def _config(connection: sa.Connection | None = None, url: str = "sqlite://") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def code_head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


#: The tables of the baseline revision.
BASELINE_TABLES = (
    "coursehub_lti_nonces", "coursehub_lti_identities", "coursehub_lti_launch_services",
    "coursehub_lti_platform_user_ids", "coursehub_lti_registrations", "coursehub_lti_registration_links",
    "coursehub_lti_registration_states",
)


def _baseline_tables() -> list[sa.Table]:
    """The baseline tables as the code defines them, for an install made by `create_all` before
    migrations that lacks some (an older version). Valid while the code's definitions of these
    tables are the baseline's: tests/platform/lti/test_lti_schema.py fails when a later migration
    changes one of them, and this must then create that table as the baseline had it."""
    from .tables import metadata

    return [metadata.tables[name] for name in BASELINE_TABLES]


def upgrade(url: str) -> None:
    """Bring the LTI database at `url` to the newest revision (a no-op when it is there)."""
    if url.startswith("sqlite") and (url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url):
        raise ValueError("the LTI store needs a database file or server (an in-memory SQLite is one per engine)")
    reader = make_engine(url, hide_parameters=True, pool_size=1)
    try:  # the common case, already up to date: a read, no write lock
        if current_revision(reader) == code_head():
            return
    finally:
        reader.dispose()
    with schema_change(url, _PG_LOCK) as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        current = context.get_current_revision()
        if current == code_head():
            return
        cfg = _config(conn, url)
        if current is None and sa.inspect(conn).has_table("coursehub_lti_identities"):
            for table in _baseline_tables():  # made by create_all: add what an older version lacked
                table.create(conn, checkfirst=True)
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
