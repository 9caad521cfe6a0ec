"""The formgrader as an instructor meets it, through the real hub in headless chromium (issue 13):
inside their Lab (Nbgrader -> Formgrader) it is not blank and its links open in Lab; the
standalone formgrader's assignment and Preview links reach the instructor's own server; and the
course.yaml deadline is what the formgrader shows. One hub start-up for the module."""

from __future__ import annotations

import pytest
import requests
from support.browser import browser_login, browser_page, chromium_available, screenshot
from support.courses import courses_with_staff
from support.hub import running_hub

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")]

COURSE = "demo-101"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):  # noqa: ANN001, ANN201
    tmp_path = tmp_path_factory.mktemp("fghub")
    with running_hub(tmp_path, settings={"courses_dir": str(courses_with_staff(tmp_path, ["prof"]))}) as hub:
        hub.login("prof")  # staff groups come with the login
        hub.prof_url = hub.start_server("prof", course=COURSE)
        hub.prof = {"Authorization": f"token {hub.user_token('prof')}"}
        # generate ps1 (so the Preview link exists), as the formgrader's Generate button does
        r = requests.post(f"{hub.prof_url}formgrader/api/assignment/ps1/assign", headers=hub.prof, timeout=120)
        assert r.status_code == 200 and r.json()["success"], r.text
        yield hub
        hub.stop_server("prof")


def test_formgrader_inside_the_instructors_lab(hub, tmp_path):
    r = requests.get(f"{hub.prof_url}formgrader/manage_assignments", headers=hub.prof, timeout=60)
    assert r.status_code == 200
    assert "frame-ancestors 'self'" in r.headers.get("Content-Security-Policy", ""), r.headers
    with browser_page(timeout_ms=120_000) as page:
        browser_login(page, hub, "prof")
        page.goto(f"{hub.prof_url}lab")
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        page.locator(".lm-Menu-itemLabel", has_text="Formgrader").first.click()
        frame = page.frame_locator("#formgrader-iframe iframe")
        row = frame.locator("tr", has_text="ps1").first
        row.wait_for()
        assert "Manage Assignments" in frame.locator("body").inner_text()
        row.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "instructors", "formgrader-in-lab.png")
        # The assignment's name opens its source folder in Lab's file browser (a message to Lab).
        row.locator("a", has_text="ps1").first.click()
        crumbs = page.locator(".jp-BreadCrumbs")
        crumbs.filter(has_text="source").wait_for()
        assert "ps1" in crumbs.inner_text()
        # The deadline is course.yaml's (it was "None" before the gradebook learnt it).
        assert "2026-12-18 23:59:00" in row.inner_text()


def test_standalone_formgrader_links_reach_the_server(hub):
    with browser_page(timeout_ms=120_000) as page:
        browser_login(page, hub, "prof")
        page.goto(f"{hub.prof_url}formgrader/manage_assignments")
        row = page.locator("tr", has_text="ps1").first
        row.wait_for()
        links = {"assignment": row.locator("a", has_text="ps1").first,
                 "preview": row.locator("td.preview a").first}
        prefix = "/user/prof/tree/courses/demo-101/"
        hrefs = {k: link.get_attribute("href") for k, link in links.items()}
        assert hrefs["assignment"] == prefix + "source/ps1", hrefs
        assert hrefs["preview"] == prefix + "release/ps1", hrefs
        for href in hrefs.values():
            resp = page.goto(hub.url + href)
            assert resp.status == 200, (href, resp.status)
