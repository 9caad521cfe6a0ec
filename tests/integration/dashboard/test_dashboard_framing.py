"""Clickjacking: a page on another origin puts the dashboard in an iframe. Chromium must refuse to
render it (the dashboard's frame-ancestors / X-Frame-Options), while the same attacker page can
frame an ordinary page (so the test can tell a blocked frame from a loaded one)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from support.browser import browser_page, chromium_available
from support.exchange import COURSE, MEMBERS, make_courses
from support.fakehub import FakeHub
from support.grading import inprocess_service
from support.net import free_port
from tornado import web

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")]


class Attacker:
    """A site on another origin: `/` frames `target`, `/inner` is a page without any protection."""

    def __init__(self, target: str):
        self.port = free_port()
        self.target = target

    def __enter__(self) -> Attacker:
        outer, inner_url = self.target, f"http://127.0.0.1:{self.port}/inner"

        class Page(web.RequestHandler):
            def get(self) -> None:
                self.finish(f"<!doctype html><h1>win a prize</h1><iframe id=victim src='{outer}'></iframe>"
                            f"<iframe id=control src='{inner_url}'></iframe>")

        class Inner(web.RequestHandler):
            def get(self) -> None:
                self.finish("<!doctype html><p id=inner>framed fine</p>")

        ready = threading.Event()

        def run() -> None:
            async def main() -> None:
                server = web.Application([(r"/", Page), (r"/inner", Inner)]).listen(self.port, address="127.0.0.1")
                self._stop, self._loop = asyncio.Event(), asyncio.get_running_loop()
                ready.set()
                await self._stop.wait()
                server.stop()

            asyncio.run(main())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def test_another_origin_cannot_frame_the_dashboard(tmp_path):
    from coursehub.grading.dashboard.handlers import dashboard_handlers

    hub = FakeHub().start()
    try:
        token = hub.add_user("inst", MEMBERS["inst"])
        courses = make_courses(tmp_path / "courses")
        with inprocess_service(tmp_path / "svc", courses, hub, extra_handlers=dashboard_handlers()) as svc:
            svc.app.settings["coursehub_settings"] = svc.settings
            dashboard = f"{svc.url}dashboard/{COURSE}/"
            with Attacker(dashboard) as attacker, browser_page() as page:
                # the browser is signed in (every request carries the instructor's token)
                page.context.set_extra_http_headers({"Authorization": f"token {token}"})
                direct = page.goto(dashboard)
                assert direct.status == 200 and page.locator("form").count() > 0
                page.goto(f"http://127.0.0.1:{attacker.port}/")
                page.wait_for_load_state("load")
                control = page.frame_locator("#control").locator("#inner")
                assert control.inner_text() == "framed fine"  # framing works in this browser...
                victim = next(f for f in page.frames if f.parent_frame is not None and f.name != "control"
                              and "inner" not in f.url)
                # ...but not for the dashboard: Chromium shows its error page instead, no buttons
                assert not victim.url.startswith(svc.url), victim.url
                assert page.frame_locator("#victim").locator("form").count() == 0
    finally:
        hub.stop()
