"""Dynamic registration against the real hub: an admin's one-time link, the fake LMS's handshake,
the new registration pending until an operator approves it with the CLI, then launches through it
(no restart, no YAML)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import launch
from fakelms.server import ROLE

from coursehub.cli import main
from coursehub.platform.lti import claims as C

from .conftest import PLATFORM
from .test_launches import new_sub

pytestmark = pytest.mark.hubcompat


def registration_link(hub, name: str = "") -> str:
    admin = {"Authorization": f"token {hub.token}"}  # an admin's API token (scripts, the CLI)
    assert requests.get(f"{hub.url}/hub/lti13/registration-links", headers=admin, timeout=30).status_code == 200
    r = requests.post(f"{hub.url}/hub/lti13/registration-links", data={"name": name}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["expires_in"] == 86400
    return r.json()["url"]


def open_as_lms(link: str, lms, **overrides: str) -> requests.Response:
    args = {"openid_configuration": f"{lms.url}/.well-known/openid-configuration",
            "registration_token": lms.registration_token, **overrides}
    return requests.get(f"{link}&{urlencode(args)}", timeout=60)


def launch_status(hub, lms, client_id: str) -> tuple[int, str]:
    """A staff launch through `client_id`: 404 ("not set up", no course names the new platform) when
    accepted."""
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub(), roles=[ROLE["instructor"]],
                                                            extra={"aud": client_id}), client_id=client_id)
    return r.status_code, r.text


def test_admin_link_registers_the_lms_pending_until_an_operator_approves(lti_env, capsys):
    hub, lms = lti_env
    link = registration_link(hub, "dynlms")
    r = open_as_lms(link, lms)
    assert r.status_code == 200, r.text[:800]
    assert 'data-platform="dynlms"' in r.text and "org.imsglobal.lti.close" in r.text
    assert 'data-state="pending"' in r.text and "awaits approval by the coursehub operators" in r.text
    assert "coursehub lti approve dynlms" in r.text  # the LMS admin learns what to ask for
    tool = lms.tool_registrations[-1]
    config = tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool["jwks_uri"] == f"{hub.url}/hub/lti13/jwks"
    assert tool["redirect_uris"] == [f"{hub.url}/hub/lti13/oauth_callback"]
    assert C.DEEP_LINKING_REQUEST in {m["type"] for m in config["messages"]}
    client_id = f"coursehub-dyn-{len(lms.tool_registrations)}"
    assert "outcome=accepted reason=registered platform=dynlms state=pending" in hub.log()

    # Pending: the launch is refused, with the reason and what the LMS admin must ask for.
    status, page = launch_status(hub, lms, client_id)
    assert status == 403 and 'data-reason="platform_pending"' in page
    assert "coursehub lti approve dynlms" in page
    assert "outcome=refused reason=platform_pending" in hub.log()
    cli = ["lti", "--settings", str(hub.settings_file)]
    capsys.readouterr()
    assert main([*cli, "pending"]) == 0
    listed = capsys.readouterr().out
    assert "dynlms" in listed and "pending" in listed and client_id in listed

    # Approved: the next launch is validated against the new registration (no restart); no course
    # names platform dynlms yet, so staff see the "not set up" page with the lti: block.
    assert main([*cli, "approve", "dynlms"]) == 0
    status, page = launch_status(hub, lms, client_id)
    assert status == 404, page[:500]
    assert "platform: dynlms" in page and "context_id: ctx-101" in page
    capsys.readouterr()
    assert main([*cli, "platforms", "--json"]) == 0
    states = {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    assert states[PLATFORM] == "settings" and states["dynlms"] == "active"  # YAML and stored, side by side

    # The link was single-use.
    again = open_as_lms(link, lms)
    assert again.status_code == 403 and 'data-reason="registration_link_invalid"' in again.text


def test_without_a_link_nothing_is_registered(lti_env):
    hub, lms = lti_env
    before = len(lms.tool_registrations)
    for url in (f"{hub.url}/hub/lti13/register", f"{hub.url}/hub/lti13/register?rt=guess"):
        r = requests.get(f"{url}{'&' if '?' in url else '?'}"
                         f"{urlencode({'openid_configuration': lms.url + '/.well-known/openid-configuration'})}",
                         timeout=30)
        assert r.status_code == 403
    assert len(lms.tool_registrations) == before
    # Only admins create links.
    r = requests.post(f"{hub.url}/hub/lti13/registration-links", timeout=30, allow_redirects=False)
    assert r.status_code in (302, 403)


@pytest.mark.parametrize(("override", "reason"), [
    ({"openid_configuration": "http://169.254.169.254/latest/meta-data"}, "registration_not_https"),
    ({"openid_configuration": "https://10.0.0.1:1/x"}, "registration_host_not_allowed"),  # private address
    ({"openid_configuration": "https://[fd00::1]/x"}, "registration_host_not_allowed"),
    ({"registration_token": "wrong"}, "registration_platform_error"),
])
def test_refused_handshakes(lti_env, override, reason):
    hub, lms = lti_env
    r = open_as_lms(registration_link(hub), lms, **override)
    assert r.status_code == 400 and f'data-reason="{reason}"' in r.text


@pytest.mark.parametrize(("override", "reason"), [
    ({"issuer": "https://evil.example"}, "registration_issuer_mismatch"),
    ({"registration_endpoint": "http://127.0.0.2:9/register"}, "registration_bad_configuration"),
])
def test_configuration_checked_against_its_url(lti_env, override, reason):
    hub, lms = lti_env
    lms.openid_overrides = override
    try:
        r = open_as_lms(registration_link(hub), lms)
    finally:
        lms.openid_overrides = {}
    assert r.status_code == 400 and f'data-reason="{reason}"' in r.text


def test_operators_reject_a_pending_registration_and_approve_it_later(lti_env, capsys):
    """The admin page's reject switches off a pending registration; `coursehub lti approve` later
    undoes it, from the next launch on (no hub restart)."""
    hub, lms = lti_env
    assert open_as_lms(registration_link(hub, "dynoff"), lms).status_code == 200
    client_id = f"coursehub-dyn-{len(lms.tool_registrations)}"
    page = f"{hub.url}/hub/lti13/registration-links"
    admin = {"Authorization": f"token {hub.token}"}
    assert "dynoff" in {p["name"] for p in requests.get(page, headers=admin, timeout=30).json()["pending"]}
    r = requests.post(page, data={"decision": "reject", "platform": "dynoff"}, headers=admin, timeout=30)
    assert r.status_code == 200 and r.json() == {"platform": "dynoff", "state": "disabled"}
    assert requests.post(page, data={"decision": "approve", "platform": "no-such"}, headers=admin,
                         timeout=30).status_code == 404
    assert requests.post(page, data={"decision": "approve", "platform": "dynoff"}, timeout=30,
                         allow_redirects=False).status_code in (302, 403)  # admins only
    status, text = launch_status(hub, lms, client_id)
    assert status == 403 and 'data-reason="platform_disabled"' in text
    assert "outcome=refused reason=platform_disabled" in hub.log()
    capsys.readouterr()
    cli = ["lti", "--settings", str(hub.settings_file)]
    assert main([*cli, "pending"]) == 0
    assert "dynoff" not in capsys.readouterr().out  # decided: no longer waiting

    assert main([*cli, "approve", "dynoff"]) == 0
    assert launch_status(hub, lms, client_id)[0] == 404
    assert main([*cli, "reject", "no-such-platform"]) == 1
