"""Fixtures of the textbook hub test: the shared demo book, a headless chromium page."""

from __future__ import annotations

import pytest
from support.browser import browser_page, chromium_available
from support.textbooks import demo_book


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """The demo course's built textbook (shared with tests/textbook; built once per session)."""
    return demo_book(tmp_path_factory.getbasetemp() / "textbook-demo")


@pytest.fixture
def page():
    if not chromium_available():
        pytest.skip("chromium is not installed (./scripts/setup --test installs it)")
    with browser_page() as p:
        yield p
