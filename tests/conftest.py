"""Shared pytest setup. Area fixtures live in each area's own conftest.py; helpers in tests/support/.

- Everything under tests/integration/ is marked `integration` (real servers), so
  `pytest -m "not integration"` is the fast unit run and `pytest -m integration` the rest.
- With CI=true a skipped test fails: a missing tool (helm, chromium, PostgreSQL, bubblewrap, the z2jh
  chart) must be installed by scripts/setup, never silently not tested.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# Servers started by tests must never try the network for telemetry or updates.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
# `coursehub up` run as root gives each hub user a Unix account: in tests they carry this prefix and
# are removed when the session ends (tests that check isolation itself use prefixes of their own).
# A second session running at the same time (scripts/test runs the JupyterHub 5.5 compatibility run
# beside the main one) sets its own `chtest<x>-` prefix, so neither removes the other's accounts.
TEST_ACCOUNT_PREFIX = os.environ.setdefault("COURSEHUB_UNIX_USER_PREFIX", "chtest-")

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.geteuid() != 0 or not re.fullmatch(r"chtest[a-z0-9]*-", TEST_ACCOUNT_PREFIX):
        return  # only ever remove accounts of a test prefix
    import grp
    import pwd
    import subprocess

    for entry in pwd.getpwall():
        if entry.pw_name.startswith(TEST_ACCOUNT_PREFIX):
            subprocess.run(["userdel", entry.pw_name], capture_output=True)
    for g in grp.getgrall():
        if g.gr_name.startswith(TEST_ACCOUNT_PREFIX):
            subprocess.run(["groupdel", g.gr_name], capture_output=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must test everything: {reason}"
