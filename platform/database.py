"""The one SQLAlchemy engine factory: every coursehub database (the grading DB with its exchange,
queue and LMS tables, and the hub side's LTI store) is opened here, so SQLite always gets the same
locking and durability settings and PostgreSQL the same pool.

SQLite: WAL (readers never block the writer), a 30 s busy timeout, foreign keys on, and
`synchronous=FULL` (a commit survives a power cut) unless the caller accepts `durable=False`.
`immediate_writes=True` starts every transaction with `BEGIN IMMEDIATE`, so two writers queue
for the lock at the start instead of failing on upgrade mid-transaction (the job queue needs that).
PostgreSQL: a pool of `pool_size` (+ as many overflow) connections, checked before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

#: Seconds a SQLite connection waits for a lock before giving up.
SQLITE_BUSY_SECONDS = 30


def make_engine(url: str, *, pool_size: int = 10, immediate_writes: bool = False, durable: bool = True,
                hide_parameters: bool = False) -> Engine:
    """An engine for `url` with coursehub's settings (see the module docstring).

    `hide_parameters` keeps statement parameters (names, emails) out of error messages and logs."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                             hide_parameters=hide_parameters)
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
