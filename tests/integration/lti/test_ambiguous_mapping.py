"""A course.yaml `lti:` entry without `platform:` while several LMSes are registered (here the fake
LMS and the local LMS page): the hub starts and says what to fix, and refuses every launch that
entry could match instead of letting any registered LMS in."""

from __future__ import annotations

import uuid

import pytest
import requests
import yaml
from fakelms import LaunchSpec, running_fake_lms
from fakelms.client import launch
from fakelms.server import ROLE
from support.hub import running_hub

from .conftest import PLATFORM, make_courses, username_for
from .test_launches import session_cookie_set


@pytest.fixture(scope="module")
def ambiguous_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ambiguous")
    courses = make_courses(root)
    (courses / "open-301").mkdir()
    (courses / "open-301" / "course.yaml").write_text(yaml.safe_dump({
        "id": "open-301", "title": "Open 301", "lti": [{"deployment_id": "dep-1", "context_id": "ctx-301"}]}))
    with running_fake_lms() as lms:
        settings = {"courses_dir": str(courses), "auth": {"dev_login": False, "lti": {
            "platforms": [lms.platform_settings(PLATFORM, ("dep-1",))], "local_lms": True}}}
        with running_hub(root, settings=settings) as hub:
            yield hub, lms


def test_platformless_entry_is_refused_at_launch(ambiguous_env):
    hub, lms = ambiguous_env
    sub = f"amb-{uuid.uuid4().hex[:10]}"
    s = requests.Session()
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, context_id="ctx-301", roles=[ROLE["instructor"]]))
    assert r.status_code == 409 and 'data-reason="ambiguous_context"' in r.text
    assert "Location" not in r.headers and not session_cookie_set(r)
    assert hub.api("GET", f"/users/{username_for(lms, sub)}").status_code == 404
    line = [x for x in hub.log().splitlines() if "reason=ambiguous_context" in x][-1]
    assert f"client_id={lms.client_id}" in line and "deployment=dep-1" in line
    assert "open-301/course.yaml: lti[0].platform: required" in hub.log()  # said at start


def test_entries_naming_their_platform_still_work(ambiguous_env):
    hub, lms = ambiguous_env
    sub = f"amb-{uuid.uuid4().hex[:10]}"
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub))
    assert r.status_code == 302 and r.headers["Location"] == "/hub/coursehub/open?course=demo-101"
