"""Dynamic registration: which URLs the hub may call (SSRF), one-time links, stored platforms."""

from __future__ import annotations

import pytest

from coursehub.platform.lti.dynamic_registration import (
    RegistrationRefused,
    UrlPolicy,
    platform_name,
    registration_from,
)
from coursehub.platform.lti.registration_store import RegistrationStore
from coursehub.platform.lti.tool_config import registration_request

CONFIG = {"issuer": "https://lms.example.edu", "authorization_endpoint": "https://lms.example.edu/auth",
          "token_endpoint": "https://lms.example.edu/token", "jwks_uri": "https://lms.example.edu/jwks",
          "registration_endpoint": "https://lms.example.edu/register",
          "id_token_signing_alg_values_supported": ["HS256", "RS256"]}


@pytest.mark.parametrize(("url", "policy", "reason"), [
    ("http://lms.example.edu/.well-known/openid-configuration", UrlPolicy(), "not_https"),
    ("http://127.0.0.1:8080/x", UrlPolicy(), "not_https"),
    ("https://127.0.0.1/x", UrlPolicy(), "host_not_allowed"),
    ("https://[::1]/x", UrlPolicy(), "host_not_allowed"),
    ("http://10.0.0.5/x", UrlPolicy(allow_loopback=True), "not_https"),
    ("https://user:pw@lms.example.edu/x", UrlPolicy(), "bad_url"),
    ("file:///etc/passwd", UrlPolicy(), "bad_url"),
    ("gopher://lms.example.edu/x", UrlPolicy(), "not_https"),
    ("https://other.example/x", UrlPolicy(("lms.example.edu",)), "host_not_allowed"),
    ("https://lms.example.edu:8443/x", UrlPolicy(("lms.example.edu:443",)), "host_not_allowed"),
])
def test_url_policy_refusals(url, policy, reason):
    with pytest.raises(RegistrationRefused) as e:
        policy.check(url, "configuration")
    assert e.value.reason == reason


def test_url_policy_accepts():
    UrlPolicy().check("https://lms.example.edu/x", "c")
    UrlPolicy(("lms.example.edu",)).check("https://lms.example.edu/x", "c")
    UrlPolicy(allow_loopback=True).check("http://127.0.0.1:9000/x", "c")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3"])
async def test_private_addresses_refused_without_allow_list(host):
    with pytest.raises(RegistrationRefused) as e:
        await UrlPolicy().check_resolved(f"https://{host}/x")
    assert e.value.reason == "host_not_allowed"


def test_registration_from_answer():
    answer = {"client_id": "c-9", "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "d-9"}}
    reg = registration_from("lms", CONFIG, answer)
    assert (reg.client_ids, reg.deployment_ids, reg.algorithms) == (("c-9",), ("d-9",), ("RS256",))
    assert reg.jwks_url == CONFIG["jwks_uri"] and reg.auth_login_url == CONFIG["authorization_endpoint"]
    assert registration_from("lms", CONFIG, {"client_id": "c"}).deployment_ids == ()


def test_platform_names():
    assert platform_name("https://Canvas.Uni.edu/x", "", set()) == "canvas-uni-edu"
    assert platform_name("https://canvas.uni.edu/x", "", {"canvas-uni-edu"}) == "canvas-uni-edu-2"
    assert platform_name("https://canvas.uni.edu/x", "canvas", set()) == "canvas"


def test_tool_registration_offers_deep_linking():
    tool = registration_request("https://hub.example/hub/", "coursehub", "d")
    config = tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert {m["type"] for m in config["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    assert config["target_link_uri"] == "https://hub.example/hub/coursehub/open"
    assert tool["jwks_uri"] == "https://hub.example/hub/lti13/jwks" and config["domain"] == "hub.example"
    assert tool["initiate_login_uri"] == "https://hub.example/hub/lti13/oauth_login"
    assert tool["token_endpoint_auth_method"] == "private_key_jwt"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in tool["scope"].split()


def test_links_are_single_use_and_expire(store):
    regs = RegistrationStore(store.engine)
    token = regs.create_link("admin", "canvas")
    assert regs.consume_link("wrong") is None
    assert regs.consume_link(token) == {"name": "canvas", "created_by": "admin"}
    assert regs.consume_link(token) is None
    old = regs.create_link("admin", ttl=-1)
    assert regs.consume_link(old) is None
    assert regs.consume_link("") is None and regs.consume_link("x" * 500) is None


def test_registrations_are_durable(store, tmp_path):
    from coursehub.platform.lti.store import LtiStore

    RegistrationStore(store.engine).save(registration_from("canvas", CONFIG, {"client_id": "c-1"}))
    again = LtiStore(f"sqlite:///{tmp_path / 'lti.sqlite'}")  # as after a restart
    try:
        (reg,) = RegistrationStore(again.engine).all()
        assert (reg.name, reg.issuer, reg.client_ids) == ("canvas", CONFIG["issuer"], ("c-1",))
    finally:
        again.dispose()


def test_other_areas_see_stored_registrations(tmp_path):
    from coursehub.platform.lti import services
    from coursehub.platform.settings import load_settings

    settings = load_settings(None, state_dir=str(tmp_path))
    assert services.dynamic_registrations(settings) == []
    assert not (tmp_path / "lti.sqlite").exists()  # reading created nothing
    store = services.open_store(settings)
    try:
        RegistrationStore(store.engine).save(registration_from("canvas", CONFIG, {"client_id": "c-1"}), state="active")
    finally:
        store.dispose()
    assert [r.name for r in services.dynamic_registrations(settings)] == ["canvas"]
    assert services.registrations(settings)["canvas"].client_ids == ("c-1",)


def test_grade_sync_sees_dynamically_registered_platforms(tmp_path):
    """The grading side's AGS/NRPS clients reach an LMS registered without a settings entry."""
    from coursehub.grading.lms.sources import platforms_from_settings
    from coursehub.platform.lti import services
    from coursehub.platform.settings import load_settings

    settings = load_settings(None, state_dir=str(tmp_path))
    assert "canvas" not in platforms_from_settings(settings)
    store = services.open_store(settings)
    try:
        RegistrationStore(store.engine).save(registration_from("canvas", CONFIG, {"client_id": "c-1"}), state="active")
    finally:
        store.dispose()
    platform = platforms_from_settings(settings)["canvas"]
    assert (platform.issuer, platform.token_url) == (CONFIG["issuer"], CONFIG["token_endpoint"])
