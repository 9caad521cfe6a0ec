"""The alembic revision of the "lms" branch creates exactly the tables the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect

import coursehub.grading
from coursehub.grading.lms.models import Base


def test_lms_branch_matches_models(tmp_path):
    migrations = Path(coursehub.grading.__file__).parent / "migrations"
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("version_locations", str(migrations / "lms"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "lms@head")
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        for table in Base.metadata.sorted_tables:
            cols = {c["name"]: c for c in insp.get_columns(table.name)}
            assert set(cols) == {c.name for c in table.columns}, table.name
            for c in table.columns:
                assert cols[c.name]["nullable"] == c.nullable, f"{table.name}.{c.name}"
            assert set(insp.get_pk_constraint(table.name)["constrained_columns"]) == {c.name for c in table.primary_key}
        command.downgrade(cfg, "lms@base")
        assert not set(inspect(engine).get_table_names()) & set(Base.metadata.tables)
    finally:
        engine.dispose()
