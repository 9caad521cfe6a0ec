"""The grading database: engines, sessions, and alembic migrations over every grading branch.

`make_engine` is the project's one engine factory (`coursehub.platform.database`), re-exported here
because every grading module opens the grading database through this module.

Migrations live in `grading/migrations/` with one version folder per part of the grading service:
`versions/` (exchange, this module's owner), `jobs/` (autograde queue, branch label "jobs") and
`lms/` (grade sync, branch label "lms"). `upgrade()` brings all branches to their heads. The
service refuses to start on an old schema (`check_schema`) and names the command that upgrades it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from coursehub.platform.database import make_engine, schema_change

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_FOLDERS = ("versions", "jobs", "lms")
UPGRADE_COMMAND = "coursehub grading-db upgrade"
#: pg_advisory_xact_lock key of "one process creates the grading database's tables at a time".
_PG_LOCK = 0x677264  # "grd"
#: Constraint and index names of the exchange's and the LMS sync's tables (their migrations use them).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

__all__ = ["make_engine", "session_factory", "upgrade", "check_schema", "redact", "SchemaOutdated"]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, engine: Engine | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    folders = [MIGRATIONS / f for f in VERSION_FOLDERS if (MIGRATIONS / f).is_dir()]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", __import__("os").pathsep.join(str(f) for f in folders))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def code_heads(url: str = "sqlite://") -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def db_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(url: str, engine: Engine | None = None, target: str = "heads") -> None:
    """Bring the database at `url` to `target` (every branch's head by default)."""
    own = engine is None
    engine = engine or make_engine(url)
    try:
        command.upgrade(alembic_config(url, engine), target)
    finally:
        if own:
            engine.dispose()


@dataclass
class SchemaStatus:
    current: set[str]
    expected: set[str]
    empty: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.expected


def schema_status(engine: Engine) -> SchemaStatus:
    empty = not inspect(engine).get_table_names()
    return SchemaStatus(db_heads(engine), code_heads(), empty)


class SchemaOutdated(RuntimeError):
    def __init__(self, url: str, status: SchemaStatus, settings_hint: str = ""):
        current = ", ".join(sorted(status.current)) or "none"
        expected = ", ".join(sorted(status.expected))
        super().__init__(
            f"The grading database ({redact(url)}) is at schema revision {current}; this version of "
            f"coursehub needs {expected}. Back it up, then run: {UPGRADE_COMMAND}{settings_hint}"
        )


def check_schema(url: str, engine: Engine, *, create_if_empty: bool = True, settings_hint: str = "") -> None:
    """Raise SchemaOutdated unless the schema is current. An empty database is created (it is not
    an old schema; there is nothing to migrate) unless `create_if_empty` is False."""
    status = schema_status(engine)
    if status.up_to_date:
        return
    if status.empty and create_if_empty:
        with schema_change(url, _PG_LOCK) as conn:  # two services starting on one new database
            if not inspect(conn).get_table_names():
                command.upgrade(alembic_config(url, connection=conn), "heads")
        status = schema_status(engine)  # made here or by the process that held the lock first
        if status.up_to_date:
            return
    raise SchemaOutdated(url, status, settings_hint)


def redact(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL we can parse: say nothing about it
        return "<database>"
