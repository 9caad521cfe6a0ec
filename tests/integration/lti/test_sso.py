"""Campus SSO on the same hub as LTI: staff roles from a claim, merged groups, account linking."""

from __future__ import annotations

import pytest
import requests
from fakelms import LaunchSpec, running_fake_lms
from fakelms.client import launch
from support.hub import running_hub

from .conftest import PLATFORM, make_courses, username_for

pytestmark = pytest.mark.hubcompat


@pytest.fixture(scope="module")
def sso_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("sso")
    courses = make_courses(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEHUB_SSO_CLIENT_SECRET", "s3cret")
    with running_fake_lms() as lms:
        settings = {
            "courses_dir": str(courses),
            "auth": {"dev_login": False,
                     "lti": {"platforms": [lms.platform_settings(PLATFORM)], "local_lms": False},
                     "sso": lms.sso_settings(roles_claim="groups", staff_values=["staff"], link_claim="email")},
        }
        try:
            with running_hub(root, settings=settings) as hub:
                yield hub, lms
        finally:
            mp.undo()


def sso_sign_in(hub, lms, claims: dict) -> tuple[requests.Session, requests.Response]:
    lms.sso_user = claims
    s = requests.Session()
    r = s.get(f"{hub.url}/hub/sso/login", timeout=60)
    return s, r


def test_staff_sign_in_gets_course_roles_from_claim_and_yaml(sso_env):
    hub, lms = sso_env
    s, r = sso_sign_in(hub, lms, {"sub": "prof.ada", "name": "Ada", "email": "ada@uni.example",
                                  "groups": ["staff", "data-201:instructor", "nope-999:instructor"]})
    assert r.status_code == 200, r.text[:300]
    home = s.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
    assert home.status_code == 200  # signed in: no redirect to the login page
    assert hub.user("prof.ada")["groups"] == ["course:data-201:instructor"]
    assert "SSO audit: outcome=accepted user=prof.ada" in hub.log()


def test_non_staff_refused(sso_env):
    hub, lms = sso_env
    s, r = sso_sign_in(hub, lms, {"sub": "stu.bob", "email": "bob@uni.example", "groups": ["students"]})
    assert r.status_code == 403 and "open coursehub from your course" in r.text
    assert s.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False).status_code == 302
    assert hub.api("GET", "/users/stu.bob").status_code == 404


def test_login_page_offers_sso(sso_env):
    hub, _ = sso_env
    page = requests.get(f"{hub.url}/hub/login", timeout=10).text
    assert 'id="sso-login"' in page and "local-lms-link" not in page


def test_linking_by_claim_makes_one_account_and_keeps_both_roles(sso_env):
    hub, lms = sso_env
    # First the LMS launch (as a student of demo-101), then campus SSO with the same email.
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub="lms-77", email="cy@uni.example"))
    assert r.status_code == 302
    lti_name = username_for(lms, "lms-77")
    _, r = sso_sign_in(hub, lms, {"sub": "cy", "email": "cy@uni.example", "groups": ["staff", "demo-101:ta"]})
    assert r.status_code == 200
    assert hub.api("GET", "/users/cy").status_code == 404  # no second account
    assert sorted(hub.user(lti_name)["groups"]) == ["course:demo-101:student", "course:demo-101:ta"]
