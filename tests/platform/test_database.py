"""The one engine factory: the SQLite settings every coursehub database relies on."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from coursehub.platform.database import make_engine


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
