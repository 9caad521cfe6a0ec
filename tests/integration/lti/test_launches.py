"""LTI 1.3 launches against the real hub: roles, two courses, identities, services, refusals."""

from __future__ import annotations

import uuid

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import PageInstead, follow_to_server, launch, parse_form
from fakelms.server import ROLE

from coursehub.platform.lti import claims as C

from .conftest import username_for

pytestmark = pytest.mark.hubcompat  # also runs on JupyterHub 5.5 (scripts/test)


def new_sub() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def session_cookie_set(r: requests.Response) -> bool:
    return "jupyterhub-hub-login" in r.headers.get("Set-Cookie", "") or \
        "jupyterhub-session-id" in r.headers.get("Set-Cookie", "")


def test_launch_keeps_the_canvas_user_id_of_its_custom_claim(lti_env):
    """Canvas substitutes `$Canvas.user.id` (asked for by /hub/lti13/config); an LMS that does not
    sends the variable's text, which is not taken."""
    hub, lms = lti_env
    canvas, other = new_sub(), new_sub()
    for sub, value in ((canvas, "4711"), (other, "$Canvas.user.id")):
        r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, custom={"canvas_user_id": value}))
        assert r.status_code == 302, r.text[:500]
    assert requests.get(f"{hub.url}/hub/lti13/config", timeout=30).json()["custom_fields"] == {
        "canvas_user_id": "$Canvas.user.id"}
    from .conftest import store_of

    store = store_of(hub)
    try:
        ids = store.platform_user_ids(lms.issuer)
        assert ids.get((lms.issuer, canvas)) == "4711" and (lms.issuer, other) not in ids
    finally:
        store.dispose()


def test_student_launch_signs_in_with_course_role_and_services(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    s = requests.Session()
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, custom={"assignment": "ps1"}))
    assert r.status_code == 302, r.text[:500]
    assert r.headers["Location"] == "/hub/coursehub/open?course=demo-101&assignment=ps1"
    assert session_cookie_set(r)
    name = username_for(lms, sub)
    assert name.startswith("fakelms-") and "sam" not in name  # from (iss, sub), never the name or email
    user = hub.user(name)
    assert user["groups"] == ["course:demo-101:student"]
    assert "LTI audit: outcome=accepted reason=ok platform=fakelms" in hub.log()

    from .conftest import store_of

    store = store_of(hub)
    try:
        (svc,) = store.services(name, "demo-101")
        assert svc["ags"]["lineitems"] == f"{lms.url}/ags/ctx-101/lineitems"
        assert svc["nrps"]["context_memberships_url"] == f"{lms.url}/nrps/ctx-101/memberships"
        assert svc["subject"] == sub and svc["role"] == "student" and svc["platform"] == "fakelms"
        ident = store.find_identity(lms.issuer, sub)
        assert (ident.username, ident.display_name, ident.email) == (name, "Sam Student", "sam@example.edu")
    finally:
        store.dispose()

    # The same person again: the same hub user (stable), still one group.
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub))
    assert r.status_code == 302
    assert hub.user(name)["groups"] == ["course:demo-101:student"]


@pytest.mark.parametrize(("roles", "expected"), [
    ([ROLE["instructor"]], "instructor"),
    ([ROLE["ta"]], "ta"),
    ([ROLE["student"], "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"], "student"),
    ([ROLE["student"], ROLE["instructor"]], "instructor"),
])
def test_each_role(lti_env, roles, expected):
    hub, lms = lti_env
    sub = new_sub()
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, roles=roles))
    assert r.status_code == 302
    assert hub.user(username_for(lms, sub))["groups"] == [f"course:demo-101:{expected}"]


def test_two_courses_roles_merged_never_removed(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    name = username_for(lms, sub)
    assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub)).status_code == 302
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, context_id="ctx-201", roles=[ROLE["ta"]]))
    assert r.headers["Location"] == "/hub/coursehub/open?course=data-201"
    assert sorted(hub.user(name)["groups"]) == ["course:data-201:ta", "course:demo-101:student"]
    # Back in the first course: the second course's role stays.
    assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub)).status_code == 302
    assert sorted(hub.user(name)["groups"]) == ["course:data-201:ta", "course:demo-101:student"]
    # The LMS role in a course is authoritative for that course only: promoted to TA in demo-101.
    assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, roles=[ROLE["ta"]])).status_code == 302
    assert sorted(hub.user(name)["groups"]) == ["course:data-201:ta", "course:demo-101:ta"]


def test_two_tabs_launching_at_once_do_not_collide(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    s = requests.Session()
    forms = []
    for ctx in ("ctx-101", "ctx-201"):
        spec = LaunchSpec(sub=sub, context_id=ctx)
        r = s.get(lms.login_initiation(hub.url, lms.prepare(spec), spec), timeout=30)
        forms.append(parse_form(r.text))
    for action, fields in reversed(forms):  # the second tab posts first
        r = s.post(action, data=fields, allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text[:300]
    assert sorted(hub.user(username_for(lms, sub))["groups"]) == ["course:data-201:student", "course:demo-101:student"]


REFUSALS = [
    ("bad_signature", LaunchSpec(signing="other_key"), "bad_signature"),
    ("unknown_key", LaunchSpec(signing="unknown_kid"), "unknown_key"),
    ("alg_none", LaunchSpec(signing="none"), "algorithm_not_allowed"),
    ("hs256_public_key", LaunchSpec(signing="hs256_public_key"), "algorithm_not_allowed"),
    ("wrong_aud", LaunchSpec(extra={"aud": "another-tool"}), "wrong_audience"),
    ("audiences_without_azp", LaunchSpec(extra={"aud": ["coursehub-test", "another-tool"]}), "azp_missing"),
    ("azp_other_tool", LaunchSpec(extra={"aud": ["coursehub-test", "x"], "azp": "x"}), "wrong_audience"),
    ("expired", LaunchSpec(iat_offset=-1000), "expired"),
    ("issued_in_future", LaunchSpec(iat_offset=600), "issued_in_future"),
    ("too_old", LaunchSpec(iat_offset=-900, exp_seconds=3600), "too_old"),
    ("missing_nonce", LaunchSpec(drop=["nonce"]), "missing_claim"),
    ("other_nonce", LaunchSpec(extra={"nonce": "0" * 64}), "nonce_mismatch"),
    ("unknown_deployment_in_token", LaunchSpec(extra={C.DEPLOYMENT_ID: "dep-evil"}), "unknown_deployment"),
    ("missing_roles", LaunchSpec(drop=[C.ROLES]), "missing_claim"),
    ("missing_version", LaunchSpec(drop=[C.VERSION]), "missing_claim"),
    ("missing_resource_link", LaunchSpec(drop=[C.RESOURCE_LINK]), "missing_claim"),
    ("missing_sub", LaunchSpec(drop=["sub"]), "missing_claim"),
    ("wrong_version", LaunchSpec(extra={C.VERSION: "1.1"}), "wrong_version"),
    ("deep_linking_student", LaunchSpec(message_type=C.DEEP_LINKING_REQUEST), "deep_link_not_staff"),
    ("wrong_message_type", LaunchSpec(message_type="LtiSubmissionReviewRequest"), "wrong_message_type"),
    ("wrong_issuer_in_token", LaunchSpec(extra={"iss": "https://evil.example"}), "wrong_issuer"),
]


@pytest.mark.parametrize(("case", "spec", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_create_no_session(lti_env, case, spec, reason):
    hub, lms = lti_env
    spec.sub = new_sub()
    s = requests.Session()
    r = launch(s, hub.url, lms, spec)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "Location" not in r.headers
    assert not session_cookie_set(r)
    assert f"reason={reason}" in r.text or f'data-reason="{reason}"' in r.text
    assert f"LTI audit: outcome=refused reason={reason} " in hub.log()
    assert hub.api("GET", f"/users/{username_for(lms, spec.sub)}").status_code == 404
    # and the browser session is not signed in either
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code in (401, 403)


def test_replayed_launch_is_refused(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    kept: list = []
    assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub), keep_form=kept).status_code == 302
    action, fields, cookies = kept[0]
    # The same form again, even with the launch cookie of the original browser: the nonce is spent.
    replay = requests.Session()
    for k, v in cookies.items():
        replay.cookies.set(k, v)
    r = replay.post(action, data=fields, allow_redirects=False, timeout=30)
    assert r.status_code == 400 and not session_cookie_set(r)
    assert "reason=replayed" in hub.log()
    # ... and from another browser (no launch cookie): refused before the token is even looked at.
    r = requests.post(action, data=fields, allow_redirects=False, timeout=30)
    assert r.status_code == 400 and not session_cookie_set(r)
    assert 'data-reason="cookies_blocked"' in r.text  # explains cookies, no redirect loop


def test_login_initiation_refuses_unknown_platforms(lti_env):
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub())
    hint = lms.prepare(spec)
    for url, reason in [
        (lms.login_initiation(hub.url, hint, spec).replace("%2Flms", "%2Fother-lms"),
         "unknown_issuer"),
        (lms.login_initiation(hub.url, hint, spec, client_id="not-registered"), "unknown_client_id"),
        (lms.login_initiation(hub.url, hint, LaunchSpec(deployment_id="dep-unknown")), "unknown_deployment"),
    ]:
        r = requests.get(url, allow_redirects=False, timeout=30)
        assert r.status_code == 403, (reason, r.status_code)
        assert "Location" not in r.headers and not session_cookie_set(r)
        assert f"LTI audit: outcome=refused reason={reason} " in hub.log()
    assert not lms.auth_requests or all(a["login_hint"] != hint for a in lms.auth_requests)


def test_unknown_context_gets_a_helpful_page(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, context_id="ctx-nobody", roles=[ROLE["instructor"]]))
    assert r.status_code == 404 and not session_cookie_set(r)
    assert "not set up on coursehub yet" in r.text
    assert "context_id: ctx-nobody" in r.text  # what staff should add to course.yaml
    assert "Traceback" not in r.text
    assert hub.api("GET", f"/users/{username_for(lms, sub)}").status_code == 404


def test_jwks_cached_and_key_rotation(lti_env):
    hub, lms = lti_env
    before = lms.jwks_requests
    for _ in range(3):
        assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub())).status_code == 302
    assert lms.jwks_requests == before  # cached: no fetch per launch
    lms.rotate_key(keep_old=False)
    assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub())).status_code == 302
    assert lms.jwks_requests == before + 1  # one refetch for the new kid
    lms.jwks_fault = "500"
    try:  # a JWKS outage keeps the known keys working
        assert launch(requests.Session(), hub.url, lms, LaunchSpec(sub=new_sub())).status_code == 302
    finally:
        lms.jwks_fault = None


def test_tool_jwks_and_configuration_published(lti_env):
    hub, _ = lti_env
    jwks = requests.get(f"{hub.url}/hub/lti13/jwks", timeout=10).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key
    config = requests.get(f"{hub.url}/hub/lti13/config", timeout=10).json()
    assert config["oidc_initiation_url"].endswith("/hub/lti13/oauth_login")
    assert config["jwks_uri"].endswith("/hub/lti13/jwks")
    assert config["redirect_uris"] == [f"{hub.url}/hub/lti13/oauth_callback"]
    key_file = hub.state_dir / "lti" / "tool-key.pem"
    assert key_file.stat().st_mode & 0o077 == 0


def test_login_page_explains_where_to_sign_in(lti_env):
    hub, _ = lti_env
    r = requests.get(f"{hub.url}/hub/login", timeout=10)
    assert r.status_code == 200 and "open coursehub from their course" in r.text
    assert 'id="local-lms-link"' in r.text
    r = requests.get(f"{hub.url}/hub/coursehub/open?course=demo-101", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]


def test_launch_starts_course_server_says_not_released_and_opens_textbook(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    name = username_for(lms, sub)
    s = requests.Session()
    # Not released yet: the student's server starts with the course, and a page says so.
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, custom={"assignment": "ps1"}))
    with pytest.raises(PageInstead) as page:
        follow_to_server(s, hub.url, r.headers["Location"])
    assert page.value.response.status_code == 200 and 'id="lti-not-released"' in page.value.response.text
    assert hub.user(name)["servers"][""]["user_options"] == {"course": "demo-101"}
    assert not (hub.state_dir / "homes" / name / "demo-101" / "ps1").exists()  # nothing unreleased leaks

    # A textbook page from the target link URI (no custom parameter): the running server is reused.
    target = f"{hub.url}/hub/coursehub/open?textbook=01-welcome"
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, target_link_uri=target))
    assert r.headers["Location"] == "/hub/coursehub/open?course=demo-101&textbook=01-welcome"
    r = s.get(hub.url + r.headers["Location"], allow_redirects=False, timeout=60)
    assert r.status_code == 302 and "01-welcome" in r.headers["Location"]
    hub.stop_server(name)


def test_login_initiation_by_post_as_lmses_do(lti_env):
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub())
    hint = lms.prepare(spec)
    r = requests.post(f"{hub.url}/hub/lti13/oauth_login", allow_redirects=False, timeout=30, data={
        "iss": lms.issuer, "login_hint": hint, "target_link_uri": f"{hub.url}/hub/coursehub/open",
        "client_id": lms.client_id, "lti_deployment_id": "dep-1"})
    assert r.status_code == 302 and r.headers["Location"].startswith(f"{lms.url}/auth?")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("coursehub-lti-") and "HttpOnly" in cookie and "Path=/hub/lti13/oauth_callback" in cookie
    assert "SameSite=Lax" in cookie  # plain http (local); https gives SameSite=None; Secure


def test_launch_cookie_is_cross_site_ready_behind_https(lti_env):
    """Behind a TLS-terminating proxy (X-Forwarded-Proto: https) the launch cookie is SameSite=None;
    Secure, so the LMS's cross-site form post carries it back."""
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub())
    r = requests.get(lms.login_initiation(hub.url, lms.prepare(spec), spec), allow_redirects=False, timeout=30,
                     headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie
    assert "redirect_uri=https%3A%2F%2F" in r.headers["Location"]
