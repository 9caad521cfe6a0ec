"""Fixtures for the autograde unit tests: a queue database per test (an SQLite file, or a fresh database
on the session's PostgreSQL server). The demo course and PostgreSQL come from tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.sqlite'}"
    return request.getfixturevalue("pg_url")  # a new empty database: a clean queue per test
