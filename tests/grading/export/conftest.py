"""Fixtures for the export tests: small gradebooks built by bulk insert, with hostile names."""

from __future__ import annotations

import pytest
from support.synthetic_gradebook import StudentRow, build_gradebook

HOSTILE = [
    StudentRow("=cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\")", "+1", "@SUM(1+1)@example.org", "-2+3"),
    StudentRow("s-comma", "Smith, Jr.", "O'Neil, \"Bob\"", "bob@example.org", "lms,1"),
    StudentRow("s-newline", "Line\nBreak", "Carriage\r\nReturn", "nl@example.org", None),
    StudentRow("s-unicode", "Zoë", "李雷 🚀", "zoë@example.org", "lms-ü"),
    StudentRow("s-tab", "\tTabbed", "\rReturned", None, None),
    StudentRow("007", "James", "Bond", "007@example.org", "0042"),
    StudentRow("-5", None, None, None, None),
]


@pytest.fixture
def hostile_db(tmp_path):
    """A gradebook whose students carry formula payloads, commas, quotes, newlines, unicode."""
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, students=HOSTILE, assignment_names=["ps1", "=evil()", "ps, 3"], seed=3)
    return url


@pytest.fixture
def plain_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, 40, 5, seed=7, late_rate=0.3)
    return url
