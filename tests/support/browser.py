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
#: axe-core from npm (./scripts/setup --test installs it): the accessibility checks of the browser tests
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DOCS = Path(__file__).resolve().parents[2] / "docs"
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


def screenshot(page, tmp_path: Path, audience: str, name: str, *, full_page: bool = False) -> None:  # noqa: ANN001
    """Into the test's folder; with $COURSEHUB_SCREENSHOTS set (any value), also into the docs'
    images of `audience` (docs/students|instructors|operators/img/), which the docs show."""
    page.screenshot(path=str(tmp_path / name), full_page=full_page)
    if os.environ.get("COURSEHUB_SCREENSHOTS"):
        folder = DOCS / audience / "img"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), full_page=full_page)


def axe_problems(page) -> list[str]:  # noqa: ANN001
    """Serious and critical axe-core violations on the page, one line each (empty: none)."""
    import pytest

    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed ({AXE}): run ./scripts/setup --test")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
