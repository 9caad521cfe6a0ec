"""The alembic revision of the queue (branch "jobs") creates exactly the tables the models use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from coursehub.grading.queue import JobQueue, JobsBase

REVISION = Path(__file__).resolve().parents[3] / "grading" / "migrations" / "jobs" / "0001_grading_jobs.py"


def _load():
    spec = importlib.util.spec_from_file_location("jobs_0001", REVISION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_revision_is_an_independent_branch():
    mod = _load()
    assert mod.down_revision is None and mod.branch_labels == ("jobs",)


def test_upgrade_matches_the_models_and_the_queue_works_on_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.sqlite'}"
    engine = sa.create_engine(url)
    mod = _load()
    with engine.begin() as conn:
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            mod.upgrade()
    inspector = sa.inspect(engine)
    for table in JobsBase.metadata.sorted_tables:
        got = {c["name"] for c in inspector.get_columns(table.name)}
        assert got == {c.name for c in table.columns}, table.name
    engine.dispose()
    q = JobQueue(url)
    jid = q.enqueue("c", "ps1", "alice")
    lease = q.lease("w", 30)
    assert lease.job_id == jid and q.complete(lease, {"status": "graded"})
    with sa.create_engine(url).begin() as conn:
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            mod.downgrade()
    assert sa.inspect(sa.create_engine(url)).get_table_names() == []
