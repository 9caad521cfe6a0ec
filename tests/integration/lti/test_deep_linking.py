"""Deep linking against the real hub: an instructor adds ps1 from the fake LMS, which verifies the
signed response with the hub's JWKS and creates the link; a student's launch of it opens ps1."""

from __future__ import annotations

import re

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import launch, parse_form
from fakelms.server import ROLE

from coursehub.platform.lti import claims as C

from .test_launches import new_sub, session_cookie_set

pytestmark = pytest.mark.hubcompat

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def picker(hub, lms, session: requests.Session, **spec) -> tuple[requests.Response, dict]:
    spec.setdefault("roles", [ROLE["instructor"]])
    r = launch(session, hub.url, lms, LaunchSpec(sub=new_sub(), message_type=C.DEEP_LINKING_REQUEST, **spec))
    return r, dict(_HIDDEN.findall(r.text))


def test_instructor_deep_links_ps1_and_a_student_opens_it(lti_env):
    hub, lms = lti_env
    s = requests.Session()
    r, fields = picker(hub, lms, s)
    assert r.status_code == 200, r.text[:500]
    assert 'data-item="assignment:ps1"' in r.text and 'data-item="textbook:01-welcome"' in r.text
    assert not session_cookie_set(r)  # choosing links signs nobody in
    # Only the LMS may show the picker in its dialog.
    assert r.headers["Content-Security-Policy"] == f"frame-ancestors 'self' {lms.url}"
    assert "X-Frame-Options" not in r.headers
    before = len(lms.created_links)

    r = s.post(f"{hub.url}/hub/lti13/deep_link", data={**fields, "item": "assignment:ps1"}, timeout=30)
    assert r.status_code == 200, r.text[:500]
    action, form = parse_form(r.text)
    assert action == f"{lms.url}/deep_link_return"
    answer = requests.post(action, data=form, timeout=30)  # the browser's auto-post to the LMS
    assert answer.status_code == 200, answer.text
    (link,) = lms.created_links[before:]
    item = link["item"]
    assert link["context"] == "ctx-101" and item["type"] == "ltiResourceLink"
    assert item["custom"] == {"assignment": "ps1"}
    assert item["lineItem"] == {"scoreMaximum": 10, "label": "Problem set 1", "resourceId": "ps1",
                                "tag": "coursehub"}
    assert item["submission"]["endDateTime"] == "2026-12-18T23:59:00Z"

    # The picker is single-use.
    again = s.post(f"{hub.url}/hub/lti13/deep_link", data={**fields, "item": "assignment:ps1"}, timeout=30)
    assert again.status_code == 400 and "deep_link_expired" in again.text

    # A student launches the created link (its custom parameters, as the LMS sends them).
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub(), custom=item["custom"],
                                                            target_link_uri=item["url"]))
    assert r.status_code == 302 and r.headers["Location"] == "/hub/coursehub/open?course=demo-101&assignment=ps1"


def test_picker_refuses_another_browser_and_foreign_items(lti_env):
    hub, lms = lti_env
    s = requests.Session()
    _, fields = picker(hub, lms, s, context_id="ctx-201")  # data-201: no ps1
    other = requests.Session()
    other.get(f"{hub.url}/hub/login", timeout=30)
    r = other.post(f"{hub.url}/hub/lti13/deep_link", timeout=30,
                   data={"_xsrf": other.cookies.get("_xsrf", ""), "request": fields["request"], "item": "x"})
    assert r.status_code in (400, 403)
    r = s.post(f"{hub.url}/hub/lti13/deep_link", data={**fields, "item": "assignment:ps1"}, timeout=30)
    assert r.status_code == 400 and "deep_link_bad_choice" in r.text


def test_no_xsrf_no_response(lti_env):
    hub, lms = lti_env
    s = requests.Session()
    _, fields = picker(hub, lms, s)
    r = s.post(f"{hub.url}/hub/lti13/deep_link", data={"request": fields["request"], "item": "assignment:ps1"},
               timeout=30)
    assert r.status_code == 403 and "JWT" not in r.text


@pytest.mark.parametrize(("spec", "status", "reason"), [
    ({"roles": [ROLE["student"]]}, 403, "deep_link_not_staff"),
    ({"dl_settings": {"accept_types": ["file"]}}, 400, "deep_link_type_not_accepted"),
    ({"dl_settings": {"deep_link_return_url": "https://evil.example/return"}}, 400, "deep_link_return_off_host"),
    ({"drop": [C.CONTEXT]}, 400, "deep_link_no_context"),
    ({"signing": "other_key"}, 400, "bad_signature"),
    ({"signing": "none"}, 400, "algorithm_not_allowed"),
    ({"drop": [C.DEEP_LINKING_SETTINGS]}, 400, "missing_claim"),
])
def test_refusals(lti_env, spec, status, reason):
    hub, lms = lti_env
    r, _ = picker(hub, lms, requests.Session(), **spec)
    assert r.status_code == status and f'data-reason="{reason}"' in r.text
    assert f"LTI audit: outcome=refused reason={reason} " in hub.log()


def test_replayed_request_is_refused(lti_env):
    hub, lms = lti_env
    kept: list = []
    spec = LaunchSpec(sub=new_sub(), roles=[ROLE["instructor"]], message_type=C.DEEP_LINKING_REQUEST)
    assert launch(requests.Session(), hub.url, lms, spec, keep_form=kept).status_code == 200
    action, fields, cookies = kept[0]
    replay = requests.Session()
    for k, v in cookies.items():
        replay.cookies.set(k, v)
    r = replay.post(action, data=fields, allow_redirects=False, timeout=30)
    assert r.status_code == 400 and 'data-reason="replayed"' in r.text and "lti-deep-link-picker" not in r.text


def test_course_not_set_up_shows_the_lti_block_to_staff(lti_env):
    hub, lms = lti_env
    r, _ = picker(hub, lms, requests.Session(), context_id="ctx-unknown")
    assert r.status_code == 404 and "context_id: ctx-unknown" in r.text
