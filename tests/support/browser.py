"""Headless Debian chromium driven by Playwright, for browser tests.

    with browser_page() as page:
        page.goto(url)

Every browser process is closed when the block ends (also on failure).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None


@contextmanager
def browser_page(timeout_ms: int = 60_000) -> Iterator:
    """A fresh browser context and page (Playwright sync API) on headless chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            yield page
            context.close()
        finally:
            browser.close()


def browser_login(page, hub, name: str) -> None:  # noqa: ANN001
    """Sign in through the hub's login form (tests/support/hub.py), then hand the browser the cookies."""
    session = hub.login(name)
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": hub.url + (c.path or "/")}
                              for c in session.cookies])


def screenshot(page, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    """Into the test's folder, and into $COURSEHUB_SCREENSHOTS (the docs' images) when set."""
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("COURSEHUB_SCREENSHOTS"):
        folder = Path(os.environ["COURSEHUB_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name))
