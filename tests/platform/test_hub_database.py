"""The local hub's own SQLite database runs in WAL mode; databases the operator names are left alone."""

from __future__ import annotations

import sqlite3

from traitlets.config import Config

from coursehub.platform.hubconfig import configure_hub
from coursehub.platform.settings import Settings


def _mode(path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_the_local_hubs_default_database_is_in_wal_mode(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", courses_dir=tmp_path / "courses")
    c = Config()
    configure_hub(c, settings)
    db = tmp_path / "state" / "jupyterhub.sqlite"
    assert c.JupyterHub.db_url == f"sqlite:///{db}"
    assert _mode(db) == "wal"


def test_a_database_the_operator_names_is_left_alone(tmp_path):
    """It may live on a network filesystem, where WAL's shared memory does not work."""
    named = tmp_path / "shared" / "hub.sqlite"
    named.parent.mkdir()
    sqlite3.connect(named).close()
    settings = Settings(state_dir=tmp_path / "state", courses_dir=tmp_path / "courses",
                        hub={"db_url": f"sqlite:///{named}"})
    configure_hub(Config(), settings)
    assert _mode(named) == "delete"
    assert not (tmp_path / "state" / "jupyterhub.sqlite").exists()


def test_on_kubernetes_the_charts_database_is_left_alone(tmp_path):
    """z2jh's sqlite-pvc may be a network filesystem; at scale the hub uses PostgreSQL."""
    settings = Settings(mode="kubernetes", state_dir=tmp_path / "state", courses_dir=tmp_path / "courses",
                        auth={"dev_login": False})
    configure_hub(Config(), settings)
    assert not (tmp_path / "state" / "jupyterhub.sqlite").exists()
