"""The one engine factory: the SQLite settings every coursehub database relies on."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from coursehub.platform.database import make_engine, use_wal


def _pragmas(engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {p: conn.execute(text(f"PRAGMA {p}")).scalar() for p in
                ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}


def test_sqlite_is_durable_wal_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'db.sqlite'}")  # the folder is created
    try:
        assert _pragmas(engine) == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000}
    finally:
        engine.dispose()


def test_the_lti_store_may_trade_durability_for_speed(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", durable=False)
    try:
        assert _pragmas(engine)["synchronous"] == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("immediate", [True, False])
def test_immediate_writes_take_the_lock_at_begin(tmp_path, immediate):
    """With immediate_writes even a transaction that has only read holds the write lock, so a second
    writer waits at BEGIN instead of failing halfway through its transaction."""
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}", immediate_writes=immediate)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1")).scalar()
            if immediate:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            else:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def _journal_and_sync(path) -> tuple[str, int]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        conn.close()


def test_use_wal_puts_a_new_file_in_wal_for_every_later_connection(tmp_path):
    path = tmp_path / "state" / "jupyterhub.sqlite"
    assert use_wal(path) == "wal"
    # a connection that sets nothing (as JupyterHub's engine) finds WAL, and still fsyncs each commit
    assert _journal_and_sync(path) == ("wal", 2)
    assert use_wal(path) == "wal"  # again: nothing changes


def test_use_wal_keeps_an_existing_databases_rows(tmp_path):
    path = tmp_path / "jupyterhub.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.executemany("INSERT INTO users VALUES (?)", [("ada",), ("grace",)])
    conn.commit()
    conn.close()
    assert _journal_and_sync(path)[0] == "delete"
    assert use_wal(path) == "wal"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT name FROM users ORDER BY name").fetchall() == [("ada",), ("grace",)]
    finally:
        conn.close()


def _backend_pid(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _kill(pg_url: str, pid: int) -> None:
    other = make_engine(pg_url, pool_size=1)
    try:
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    finally:
        other.dispose()


def test_postgresql_replaces_a_dead_connection_that_sat_idle_in_the_pool(pg_url, monkeypatch):
    from coursehub.platform import database

    monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle
    engine = database.make_engine(pg_url, pool_size=1)
    try:
        pid = _backend_pid(engine)
        _kill(pg_url, pid)  # the server dropped the pooled connection (a restart, a firewall)
        assert _backend_pid(engine) != pid  # pinged, found dead, replaced: the caller never saw it
    finally:
        engine.dispose()


def test_postgresql_does_not_ping_a_connection_in_steady_use(pg_url):
    """A connection back in the pool within PING_AFTER_IDLE is used without a round trip first;
    if it died meanwhile, that statement fails once and the pool is replaced."""
    from sqlalchemy.exc import OperationalError

    engine = make_engine(pg_url, pool_size=1)
    pings: list[int] = []
    real = engine.dialect.do_ping
    engine.dialect.do_ping = lambda conn: pings.append(1) or real(conn)  # type: ignore[method-assign]
    try:
        pid = _backend_pid(engine)
        for _ in range(5):
            assert _backend_pid(engine) == pid
        assert pings == []
        _kill(pg_url, pid)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
