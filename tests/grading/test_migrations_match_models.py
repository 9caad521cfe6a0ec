"""The migrations build exactly the tables the models describe, for every branch.

alembic's autogenerate comparison against all three declarative bases (what migrations/env.py gives
it) must find nothing to add and nothing to drop after `upgrade()`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coursehub.grading import db
from coursehub.grading.lms.models import Base as LmsBase
from coursehub.grading.models import Base as ExchangeBase
from coursehub.grading.queue.models import JobsBase

ALL_METADATA = [ExchangeBase.metadata, JobsBase.metadata, LmsBase.metadata]


def _table_diffs(url: str) -> list:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diffs = compare_metadata(ctx, ALL_METADATA)
    finally:
        engine.dispose()
    return [d for d in diffs if isinstance(d, tuple) and d[0] in ("add_table", "remove_table")]


def test_upgrade_creates_every_models_table_and_no_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grading.sqlite'}"
    db.upgrade(url)
    assert _table_diffs(url) == []


def test_the_comparison_would_see_a_missing_branch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grading.sqlite'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE lms_roster")
    engine.dispose()
    assert [d[1].name for d in _table_diffs(url)] == ["lms_roster"]


def test_alembic_check_through_env_py_finds_no_drift(tmp_path: Path) -> None:
    """`alembic check` runs migrations/env.py's own target metadata: with one base (as before) it
    would propose dropping the queue and outbox tables."""
    url = f"sqlite:///{tmp_path / 'grading.sqlite'}"
    db.upgrade(url)
    command.check(db.alembic_config(url))
