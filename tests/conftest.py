"""Shared pytest setup. Area fixtures live in each area's own conftest.py; helpers in tests/support/.

- Everything under tests/integration/ is marked `integration` (real servers), so
  `pytest -m "not integration"` is the fast unit run and `pytest -m integration` the rest.
- With CI=true a skipped test fails: a missing tool (helm, chromium, PostgreSQL, bubblewrap, the z2jh
  chart) must be installed by scripts/setup, never silently not tested.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Servers started by tests must never try the network for telemetry or updates.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must test everything: {reason}"
