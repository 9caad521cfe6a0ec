"""The one SQLAlchemy engine factory: every coursehub database (the grading DB with its exchange,
queue and LMS tables, and the hub side's LTI store) is opened here, so SQLite always gets the same
locking and durability settings and PostgreSQL the same pool.

SQLite: WAL (readers never block the writer), a 30 s busy timeout, foreign keys on, and
`synchronous=FULL` (a commit survives a power cut) unless the caller accepts `durable=False`.
`immediate_writes=True` starts every transaction with `BEGIN IMMEDIATE`, so two writers queue
for the lock at the start instead of failing on upgrade mid-transaction (the job queue needs that).
`wal=False` leaves the file's journal mode alone (nbgrader's gradebook, which instructors may keep
on a network filesystem, where WAL's shared memory does not work).
PostgreSQL: a pool of `pool_size` (+ as many overflow) connections. A connection that sat in the
pool longer than `PING_AFTER_IDLE` seconds is pinged before use (the server restarted, a firewall
dropped it) and replaced if dead; one in steady use is not, because a ping is a round trip per
request at a deadline. If the server restarts while connections are busy, the next statement on
each fails once (OperationalError: the grading service answers 503 and the clients retry), and
SQLAlchemy replaces the whole pool.

`schema_change` is the one way a process creates or migrates a schema that other processes may be
creating at the same moment (the hub, the grading service, a worker, a CLI starting together).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine

#: Seconds a SQLite connection waits for a lock before giving up.
SQLITE_BUSY_SECONDS = 30


#: Seconds in the pool after which a PostgreSQL connection is pinged before it is used again.
PING_AFTER_IDLE = 10.0


def ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only if it was idle for `PING_AFTER_IDLE` seconds; a
    dead one is replaced (the pool retries the checkout with a new one)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as e:
            raise exc.DisconnectionError(f"a pooled connection idle for {time.monotonic() - since:.0f} s "
                                         f"is dead: {e}") from e


def make_engine(url: str, *, pool_size: int = 10, immediate_writes: bool = False, durable: bool = True,
                hide_parameters: bool = False, wal: bool = True) -> Engine:
    """An engine for `url` with coursehub's settings (see the module docstring).

    `hide_parameters` keeps statement parameters (names, emails) out of error messages and logs."""
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=hide_parameters)
        ping_idle_connections(engine)
        return engine
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False},
                           hide_parameters=hide_parameters)
    synchronous = "FULL" if durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        if immediate_writes:
            dbapi_conn.isolation_level = None  # the driver opens no transaction; "begin" below does
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cur.close()

    if immediate_writes:
        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def schema_change(url: str, lock_key: int, *, wal: bool = True) -> Iterator[Connection]:
    """A transaction in which one process at a time creates or migrates a schema: SQLite takes the
    write lock at BEGIN (IMMEDIATE), PostgreSQL an advisory lock (`lock_key`, one per schema) held
    until the commit. Whoever comes second waits, then finds the first one's work: check again
    inside before creating anything. DDL is transactional on both, so a failure leaves nothing."""
    engine = make_engine(url, immediate_writes=True, hide_parameters=True, pool_size=1, wal=wal)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
            yield conn
    finally:
        engine.dispose()


def use_wal(sqlite_file: Path) -> str:
    """Put a SQLite database file (created if missing) in WAL mode, which the file keeps for every
    later connection, and return the journal mode it has now ("wal", or what SQLite kept). For a
    database whose engine other code makes (JupyterHub's own): a commit then appends to the log with
    one fsync, instead of writing, syncing and deleting a rollback journal and syncing the database
    file. Durability stays (`synchronous` is still FULL). Not for a file on a network filesystem
    (WAL needs shared memory between the processes that open it)."""
    import sqlite3

    sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(sqlite_file, timeout=SQLITE_BUSY_SECONDS)
    try:
        return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    finally:
        conn.close()
