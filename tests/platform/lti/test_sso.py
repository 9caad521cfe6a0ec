"""Campus SSO: usernames through the identity table, course roles from claims and course.yaml."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets.config import Config, LoggingConfigurable

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import Catalog, load_course
from coursehub.platform.lti.identity import username_candidates
from coursehub.platform.sso import make_sso_authenticator

DEMO = load_course(SOURCE_ROOT / "courses" / "demo-101")
STAFFED = DEMO.model_copy(update={"staff": DEMO.staff.model_copy(update={"teaching_assistants": ["tara"]})})


@pytest.fixture
def sso(store, monkeypatch):
    monkeypatch.setenv("SSO_SECRET", "x")
    coursehub = LoggingConfigurable(config=Config())
    vars(coursehub).update(
        sso={"enabled": True, "client_id": "c", "client_secret_env": "SSO_SECRET", "authorize_url": "https://idp/a",
             "token_url": "https://idp/t", "userdata_url": "https://idp/u", "username_claim": "sub",
             "roles_claim": "groups", "staff_values": ["staff"], "link_claim": "email"},
        store=store, catalog=Catalog([STAFFED]), public_url="https://hub.example.edu",
        get_uri_scheme=lambda request: "https",
    )
    return make_sso_authenticator(coursehub)


def test_settings_applied(sso):
    assert sso.client_secret == "x"
    assert sso.oauth_callback_url == "https://hub.example.edu/hub/sso/callback"
    assert sso.manage_groups is True


def test_readable_subject_becomes_the_username_and_is_collision_free(sso, store):
    assert sso.user_info_to_username({"sub": "Prof.Ada"}) == "prof.ada"
    assert sso.user_info_to_username({"sub": "Prof.Ada"}) == "prof.ada"  # stable
    store.claim_identity("https://lms", "x", ["mallory"])  # an LTI identity already holds "mallory"
    name = sso.user_info_to_username({"sub": "mallory"})
    assert name != "mallory" and name.startswith("sso-")
    assert sso.user_info_to_username({"sub": "a weird/subject"}).startswith("sso-")


def test_course_roles_from_claim_and_course_yaml(sso):
    assert sso.granted_groups("tara", {"sub": "tara"}) == ["course:demo-101:ta"]
    assert sso.granted_groups("x", {"sub": "x", "groups": ["demo-101:instructor", "nope:instructor",
                                                           "course:demo-101:student", "staff"]}) == [
        "course:demo-101:instructor", "course:demo-101:student"]
    assert sso.granted_groups("y", {"sub": "y", "groups": "demo-101:bogus"}) == []


def test_linking_by_claim_reuses_the_lti_account(sso, store):
    lti_name = username_candidates("canvas", "https://canvas", "77")[0]
    store.claim_identity("https://canvas", "77", [lti_name], link_value="cy@uni.example")
    assert sso.user_info_to_username({"sub": "cy", "email": "cy@uni.example"}) == lti_name
    assert sso.user_info_to_username({"sub": "dee", "email": "dee@uni.example"}) == "dee"


async def test_non_staff_refused_and_groups_merged(sso, monkeypatch):
    async def fake_authenticate(self, handler, data=None, **kw):
        return {"name": "prof.ada", "admin": None,
                "auth_state": {"oauth_user": {"sub": "prof.ada", "groups": self._groups}}}

    from oauthenticator.generic import GenericOAuthenticator

    monkeypatch.setattr(GenericOAuthenticator, "authenticate", fake_authenticate)
    handler = SimpleNamespace(find_user=lambda name: SimpleNamespace(groups=[SimpleNamespace(name="course:x:student")]))
    sso._groups = ["students"]
    assert await sso.authenticate(handler) is None
    sso._groups = ["staff", "demo-101:instructor"]
    model = await sso.authenticate(handler)
    assert model["groups"] == ["course:demo-101:instructor", "course:x:student"]
