"""Shared pytest setup. Area fixtures live in each area's own conftest.py; helpers in tests/support/."""

import os

# Servers started by tests must never try the network for telemetry or updates.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
