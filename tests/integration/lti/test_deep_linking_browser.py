"""The deep linking picker in a real browser: the fake LMS's request, the instructor's click, the
signed response auto-posted back to the LMS, which verifies it and creates the link."""

from __future__ import annotations

import pytest
from fakelms import LaunchSpec
from fakelms.server import ROLE
from support.browser import browser_page, chromium_available

from coursehub.platform.lti import claims as C

from .test_launches import new_sub

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")


def test_instructor_picks_ps1_in_the_browser(lti_env):
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub(), roles=[ROLE["instructor"]], message_type=C.DEEP_LINKING_REQUEST,
                      dl_settings={"accept_multiple": True, "title": "Add an activity"})
    before = len(lms.created_links)
    with browser_page(timeout_ms=60_000) as page:
        page.goto(lms.login_initiation(hub.url, lms.prepare(spec), spec))
        page.locator("#lti-deep-link-picker").wait_for()
        assert "Add an activity" in page.inner_text("#lti-deep-link-picker")
        page.check('input[data-item="assignment:ps1"]')
        page.check('input[data-item="textbook:02-lists"]')
        page.click("#dl-add")
        page.wait_for_url(f"{lms.url}/deep_link_return")
        page.get_by_text('"created": 2').wait_for()
    items = [link["item"] for link in lms.created_links[before:]]
    assert [i["custom"] for i in items] == [{"assignment": "ps1"}, {"textbook": "02-lists"}]
    assert items[0]["lineItem"]["scoreMaximum"] == 10 and "lineItem" not in items[1]
