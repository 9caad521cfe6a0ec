"""Dynamic registration against the real hub: an admin's one-time link, the fake LMS's handshake,
and launches through the new registration at once (no restart, no YAML)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import launch
from fakelms.server import ROLE

from coursehub.platform.lti import claims as C

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


def test_admin_link_registers_the_lms_and_launches_work_at_once(lti_env):
    hub, lms = lti_env
    link = registration_link(hub, "dynlms")
    r = open_as_lms(link, lms)
    assert r.status_code == 200, r.text[:800]
    assert 'data-platform="dynlms"' in r.text and "org.imsglobal.lti.close" in r.text
    tool = lms.tool_registrations[-1]
    config = tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool["jwks_uri"] == f"{hub.url}/hub/lti13/jwks"
    assert tool["redirect_uris"] == [f"{hub.url}/hub/lti13/oauth_callback"]
    assert C.DEEP_LINKING_REQUEST in {m["type"] for m in config["messages"]}
    client_id = f"coursehub-dyn-{len(lms.tool_registrations)}"
    assert "outcome=accepted reason=registered platform=dynlms" in hub.log()

    # A launch through the new client id is validated against the new registration right away; no
    # course names platform dynlms yet, so staff see the "not set up" page with the lti: block.
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub(), roles=[ROLE["instructor"]],
                                                            extra={"aud": client_id}), client_id=client_id)
    assert r.status_code == 404, r.text[:500]
    assert "platform: dynlms" in r.text and "context_id: ctx-101" in r.text

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


def test_operators_reject_and_approve_a_registration_with_the_cli(lti_env, capsys):
    """`coursehub lti reject NAME` holds at the next launch (no hub restart); `approve` undoes it."""
    from coursehub.cli import main

    hub, lms = lti_env
    assert open_as_lms(registration_link(hub, "dynoff"), lms).status_code == 200
    client_id = f"coursehub-dyn-{len(lms.tool_registrations)}"

    def launch_status() -> tuple[int, str]:
        r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub(), roles=[ROLE["instructor"]],
                                                                extra={"aud": client_id}), client_id=client_id)
        return r.status_code, r.text

    assert launch_status()[0] == 404  # accepted: the "not set up" page (no course names dynoff)
    cli = ["lti", "--settings", str(hub.settings_file)]
    assert main([*cli, "reject", "dynoff"]) == 0
    status, page = launch_status()
    assert status == 403 and 'data-reason="platform_disabled"' in page
    assert "outcome=refused reason=platform_disabled" in hub.log()
    capsys.readouterr()
    assert main([*cli, "registrations", "--disabled"]) == 0
    listed = capsys.readouterr().out
    assert "dynoff" in listed and "disabled" in listed and client_id in listed

    assert main([*cli, "approve", "dynoff"]) == 0
    assert launch_status()[0] == 404
    capsys.readouterr()
    assert main([*cli, "registrations", "--disabled"]) == 0
    assert "dynoff" not in capsys.readouterr().out
    assert main([*cli, "reject", "no-such-platform"]) == 1
