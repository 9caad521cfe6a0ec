"""Headless Debian chromium driven by Playwright, for browser tests.

    with browser_page() as page:
        page.goto(url)

Every browser process is closed when the block ends (also on failure).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

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
