"""The LTI database under alembic: a new database gets the newest revision, an install made by
`create_all` before migrations is adopted (the tables it lacks added, nothing lost), the migrations
match the tables the code writes. Processes opening a new store at once: tests/test_schemas_created_at_once.py."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from coursehub.platform.lti import schema
from coursehub.platform.lti.registration_store import RegistrationStore
from coursehub.platform.lti.store import LtiStore
from coursehub.platform.lti.tables import identities, metadata


def _drift(engine: sa.Engine, target: sa.MetaData) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE}), target)


def test_a_new_database_is_migrated_to_the_newest_revision_without_drift(db_url):
    store = LtiStore(db_url)
    assert schema.current_revision(store.engine) == schema.code_head()
    assert set(metadata.tables) <= set(sa.inspect(store.engine).get_table_names())
    assert _drift(store.engine, metadata) == []  # the migrations make exactly the tables the code writes
    store.issue_nonce("n-1", ttl=60)  # the store works on the migrated tables
    assert store.consume_nonce("n-1") and not store.consume_nonce("n-1")
    LtiStore(db_url)  # opening it again (a restart) changes nothing
    assert schema.current_revision(store.engine) == schema.code_head()


def test_the_baseline_revision_is_what_create_all_made(tmp_path):
    """Adopting an old install creates its missing tables from the code's definitions: valid only
    while they are the baseline revision's (change schema._baseline_tables when this fails)."""
    url = f"sqlite:///{tmp_path / 'baseline.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(schema._config(conn, url), schema.BASELINE)
    baseline = sa.MetaData()
    for table in schema._baseline_tables():
        table.to_metadata(baseline)
    assert _drift(engine, baseline) == []
    engine.dispose()


def test_an_install_from_before_migrations_is_adopted_and_keeps_its_rows(db_url):
    engine = sa.create_engine(db_url)
    older = [t for t in metadata.sorted_tables if t.name != "coursehub_lti_registration_states"]
    metadata.create_all(engine, tables=older)  # as create_all made it, one version back
    with engine.begin() as conn:
        conn.execute(sa.insert(identities).values(issuer="https://lms.example", subject="s-1", username="alice",
                                                  display_name="Alice", email="", updated_at=time.time()))
    engine.dispose()
    store = LtiStore(db_url)
    assert schema.current_revision(store.engine) == schema.code_head()
    assert _drift(store.engine, metadata) == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(identities.c.username)).scalars().all() == ["alice"]
    assert RegistrationStore(store.engine).all() == []  # the table the old install lacked is there


def test_an_in_memory_database_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="database file or server"):
        schema.upgrade("sqlite://")
