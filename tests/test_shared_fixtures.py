"""The session fixtures of tests/support/fixtures.py: one PostgreSQL server, but a database per test
that no other test sees, and connections a test leaves open are cut when it ends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def test_each_database_is_fresh_and_apart_from_the_others(pg_server, pg_database, pg_url):
    other = pg_database("other")
    assert pg_url != other and pg_url.rsplit("/", 1)[0] == other.rsplit("/", 1)[0] == pg_server.url.rsplit("/", 1)[0]
    one, two = sa.create_engine(pg_url), sa.create_engine(other)
    try:
        with one.begin() as c:
            c.execute(sa.text("CREATE TABLE mine (v int)"))
        assert sa.inspect(two).get_table_names() == []
        assert sa.inspect(one).get_table_names() == ["mine"]
    finally:
        one.dispose()
        two.dispose()


def test_a_connection_left_open_is_cut(pg_server):
    url = pg_server.create_database("left")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    try:
        pg_server.close_connections(url)
        with pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("SELECT 1"))
    finally:
        conn.close()
        engine.dispose()
