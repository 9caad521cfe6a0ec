"""Attack classes against the hub's LTI side, on a real hub and the fake LMS: hostile claims
(types, sizes), oversized login parameters, the open page's query and Host header, the local LMS
page's XSRF, security headers, observers and mentors, and what the audit lines carry."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import PageInstead, follow_to_server, launch, local_lms_launch, parse_form
from fakelms.server import ROLE

from coursehub.platform.lti import claims as C

from .conftest import store_of, username_for
from .test_launches import session_cookie_set

M = "http://purl.imsglobal.org/vocab/lis/v2/membership"
SECRET_NAME = "Zelda Quietname"
SECRET_EMAIL = "zelda.quiet@private.example"


def new_sub() -> str:
    return f"hard-{uuid.uuid4().hex[:12]}"


def assert_no_side_effect(hub, lms, s: requests.Session, r: requests.Response, sub: str) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "Location" not in r.headers and not session_cookie_set(r)
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code in (401, 403)
    if isinstance(sub, str) and len(sub) < 256:
        assert hub.api("GET", f"/users/{username_for(lms, sub)}").status_code == 404
        store = store_of(hub)
        try:
            assert store.find_identity(lms.issuer, sub) is None
            assert store.services(username_for(lms, sub)) == []
        finally:
            store.dispose()


WRONG_TYPES = [
    ("sub_number", {"sub": 12345}), ("sub_list", {"sub": ["x"]}),
    ("name_object", {"name": {"first": SECRET_NAME}}), ("email_list", {"email": [SECRET_EMAIL]}),
    ("context_string", {C.CONTEXT: "ctx-101"}), ("context_id_number", {C.CONTEXT: {"id": 101}}),
    ("roles_object", {C.ROLES: {"Learner": True}}), ("roles_of_numbers", {C.ROLES: [1, 2]}),
    ("custom_list", {C.CUSTOM: ["assignment", "ps1"]}), ("ags_list", {C.AGS_ENDPOINT: ["https://x"]}),
    ("ags_lineitem_number", {C.AGS_ENDPOINT: {"lineitems": 5, "lineitem": 6}}),
    ("nrps_string", {C.NRPS: "https://x/members"}),
    ("resource_link_id_list", {C.RESOURCE_LINK: {"id": ["a"], "title": "t"}}),
    ("resource_link_title_object", {C.RESOURCE_LINK: {"id": "a", "title": {"x": 1}}}),
    ("target_link_uri_number", {C.TARGET_LINK_URI: 42}), ("iat_string", {"iat": "1700000000"}),
    ("deployment_list", {C.DEPLOYMENT_ID: ["dep-1"]}), ("aud_object", {"aud": {"coursehub-test": 1}}),
    ("iss_number", {"iss": 5}), ("nonce_number", {"nonce": 5}),
]


@pytest.mark.parametrize(("case", "extra"), WRONG_TYPES, ids=[c for c, _ in WRONG_TYPES])
def test_platform_signed_wrong_types_refused_before_any_side_effect(lti_env, case, extra):
    hub, lms = lti_env
    sub = new_sub()
    s = requests.Session()
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, extra=extra, signing="raw"))
    assert_no_side_effect(hub, lms, s, r, sub)
    assert "Traceback" not in r.text and 'data-reason="' in r.text


@pytest.mark.parametrize("claim", ["sub", "name", "email", "context_id", "resource_link", "custom"])
def test_megabyte_claims_refused_and_never_logged(lti_env, claim):
    hub, lms = lti_env
    sub = new_sub()
    big = "z" * 2**20
    spec = LaunchSpec(sub=sub, name=SECRET_NAME, email=SECRET_EMAIL)
    if claim == "sub":
        spec.sub = SECRET_NAME + big
    elif claim == "name":
        spec.name = SECRET_NAME + big
    elif claim == "email":
        spec.email = SECRET_EMAIL + big
    elif claim == "context_id":
        spec.context_id = "ctx-" + big
    elif claim == "resource_link":
        spec.extra = {C.RESOURCE_LINK: {"id": "rl-" + big}}
    else:
        spec.custom = {"assignment": big}
    s = requests.Session()
    r = launch(s, hub.url, lms, spec)
    assert r.status_code in (400, 413), (r.status_code, r.text[:300])  # 413: the whole token is too large
    assert_no_side_effect(hub, lms, s, r, spec.sub)
    log = hub.log()
    assert "reason=claim_too_long" in log or "reason=launch_too_large" in log
    assert "zzzzzzzzzzzzzzzz" not in log and SECRET_NAME not in log and SECRET_EMAIL not in log
    assert "zzzzzzzzzzzzzzzz" not in r.text


def test_no_personal_data_in_the_hub_log(lti_env):
    hub, lms = lti_env
    sub = new_sub()
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, name=SECRET_NAME, email=SECRET_EMAIL))
    assert r.status_code == 302
    store = store_of(hub)
    try:
        assert store.find_identity(lms.issuer, sub).email == SECRET_EMAIL
    finally:
        store.dispose()
    log = hub.log()
    assert SECRET_EMAIL not in log and SECRET_NAME not in log
    assert "sam@example.edu" not in log and "Sam Student" not in log


@pytest.mark.parametrize(("spec", "reason"), [
    (LaunchSpec(iat_offset=-1000), "expired"),
    (LaunchSpec(extra={"sub": 5}, signing="raw"), "invalid_claim"),
    (LaunchSpec(extra={C.ROLES: "Learner"}), "invalid_claim"),
    (LaunchSpec(extra={"nonce": "0" * 64}), "nonce_mismatch"),
    (LaunchSpec(deployment_id="dep-1", extra={C.DEPLOYMENT_ID: "dep-other"}), "unknown_deployment"),
    (LaunchSpec(roles=[ROLE["student"].replace("#Learner", "#Mentor")]), "observer_role"),
    (LaunchSpec(context_id="ctx-nobody"), "unknown_context"),
])
def test_audit_of_verified_refusals_names_client_and_deployment(lti_env, spec, reason):
    hub, lms = lti_env
    spec.sub = new_sub()
    spec.name, spec.email = SECRET_NAME, SECRET_EMAIL
    r = launch(requests.Session(), hub.url, lms, spec)
    assert 400 <= r.status_code < 500
    lines = [line for line in hub.log().splitlines() if f"outcome=refused reason={reason} " in line]
    assert lines, reason
    deployment = spec.extra.get(C.DEPLOYMENT_ID, "dep-1")
    assert f"client_id={lms.client_id}" in lines[-1] and f"deployment={deployment}" in lines[-1], lines[-1]
    assert SECRET_EMAIL not in lines[-1] and SECRET_NAME not in lines[-1] and spec.sub not in lines[-1]


@pytest.mark.parametrize("param", ["login_hint", "lti_message_hint", "target_link_uri", "iss", "client_id",
                                   "lti_deployment_id"])
def test_oversized_login_parameters_get_a_clear_400(lti_env, param):
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub())
    data = {"iss": lms.issuer, "login_hint": lms.prepare(spec), "target_link_uri": f"{hub.url}/hub/coursehub/open",
            "client_id": lms.client_id, "lti_deployment_id": "dep-1", "lti_message_hint": "m"}
    data[param] = "h" * 16_384
    r = requests.post(f"{hub.url}/hub/lti13/oauth_login", data=data, allow_redirects=False, timeout=30)
    assert r.status_code == 400 and "Location" not in r.headers
    assert 'data-reason="login_request_too_large"' in r.text and "hhhhhhhh" not in r.text
    assert "hhhhhhhhhhhhhhhh" not in hub.log()


def test_login_parameters_within_bounds_are_carried(lti_env):
    hub, lms = lti_env
    spec = LaunchSpec(sub=new_sub())
    data = {"iss": lms.issuer, "login_hint": lms.prepare(spec), "target_link_uri": f"{hub.url}/hub/coursehub/open",
            "client_id": lms.client_id, "lti_deployment_id": "dep-1", "lti_message_hint": "m" * 2000}
    r = requests.post(f"{hub.url}/hub/lti13/oauth_login", data=data, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "m" * 2000 in r.headers["Location"]


def signed_in_student(hub, lms) -> tuple[requests.Session, str]:
    s, sub = requests.Session(), new_sub()
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub))
    assert r.status_code == 302
    return s, username_for(lms, sub)


@pytest.mark.parametrize("query", [
    "course=demo-101&tries=abc", "course=demo-101&tries=-1", "course=demo-101&tries=1.5",
    "course=demo-101&tries=99999999999999999999999", "course=demo-101&tries=%00",
    "course=demo-101&assignment=..%2F..%2Fx", "course=demo-101&textbook=%2Fetc%2Fpasswd",
    "course=" + "d" * 3000, "course=demo%20101", "",
])
def test_open_page_bad_query_is_400(lti_env, query):
    hub, lms = lti_env
    s, _ = signed_in_student(hub, lms)
    r = s.get(f"{hub.url}/hub/coursehub/open?{query}", allow_redirects=False, timeout=30)
    assert r.status_code == 400, (query, r.status_code)
    assert "Traceback" not in r.text and "d" * 3000 not in r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"


class Listener:
    """A TCP port that counts connections: where a Host header would send the hub's requests."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_host_header_never_directs_the_hubs_requests(lti_env):
    hub, lms = lti_env
    s, name = signed_in_student(hub, lms)
    with pytest.raises(PageInstead):  # starts the server; ps1 is not released to this student
        follow_to_server(s, hub.url, "/hub/coursehub/open?course=demo-101&assignment=ps1")
    listener = Listener()
    try:
        for headers in ({"Host": f"127.0.0.1:{listener.port}"},
                        {"Host": f"127.0.0.1:{listener.port}", "X-Forwarded-Host": f"127.0.0.1:{listener.port}",
                         "X-Forwarded-Proto": "http"},
                        {"X-Forwarded-Host": f"127.0.0.1:{listener.port}"}):
            r = s.get(f"{hub.url}/hub/coursehub/open?course=demo-101&assignment=ps1", headers=headers,
                      allow_redirects=False, timeout=120)
            assert r.status_code == 200 and 'id="lti-not-released"' in r.text, r.status_code
        assert listener.connections == 0
    finally:
        listener.close()
        hub.stop_server(name)


def test_local_lms_launch_requires_the_xsrf_token(lti_env):
    hub, _ = lti_env
    s = requests.Session()
    assert s.get(f"{hub.url}/hub/lms", timeout=30).status_code == 200
    form = {"course": "demo-101", "kind": "course", "item": "", "role": "instructor", "person": "Mallory"}
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Origin": "https://evil.example"}
    for data, headers in ((form, {}), (form, cross_site), ({**form, "_xsrf": "forged"}, cross_site),
                          ({**form, "_xsrf": "2|00000000|" + "0" * 32 + "|1"}, {})):
        r = s.post(f"{hub.url}/hub/lms/launch", data=data, headers=headers, allow_redirects=False, timeout=30)
        assert r.status_code == 403, (data.get("_xsrf"), r.status_code)
        assert "Location" not in r.headers
    # a browser without the page's cookie (another site's form) cannot post either
    r = requests.post(f"{hub.url}/hub/lms/launch", data=form, headers=cross_site, allow_redirects=False, timeout=30)
    assert r.status_code == 403
    # the OIDC endpoint answers GET only
    assert requests.post(f"{hub.url}/hub/lms/auth", data={}, timeout=30).status_code in (403, 405)
    # the page's own form works
    r = local_lms_launch(requests.Session(), hub.url, course="demo-101", kind="course", item="", role="student",
                         person="Demo student")
    assert r.status_code == 302 and r.headers["Location"] == "/hub/coursehub/open?course=demo-101"


def test_local_lms_urls_come_from_configuration_not_the_host_header(lti_env):
    hub, _ = lti_env
    s = requests.Session()
    s.get(f"{hub.url}/hub/lms", timeout=30)
    r = s.post(f"{hub.url}/hub/lms/launch", allow_redirects=False, timeout=30, headers={"Host": "evil.example"},
               data={"_xsrf": s.cookies.get("_xsrf", ""), "course": "demo-101", "kind": "course", "item": "",
                     "role": "student", "person": "P"})
    if r.status_code == 302:
        assert "evil.example" not in r.headers["Location"]
    else:  # the anonymous XSRF id may include the host: refused, which is fine too
        assert r.status_code == 403


def _headers_ok(r: requests.Response) -> None:
    assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
    assert r.headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN"), r.url
    assert "frame-ancestors" in r.headers.get("Content-Security-Policy", ""), r.url


def test_every_coursehub_page_has_the_security_headers(lti_env):
    hub, lms = lti_env
    anon = requests.Session()
    for path in ("/hub/login", "/hub/lms", "/hub/lms/jwks", "/hub/lti13/jwks", "/hub/lti13/config",
                 "/hub/lti13/oauth_login", "/hub/lms/auth?client_id=x"):
        _headers_ok(anon.get(hub.url + path, allow_redirects=False, timeout=30))
    _headers_ok(anon.post(f"{hub.url}/hub/lti13/oauth_callback", data={"state": "x", "id_token": "y"}, timeout=30))
    s, _ = signed_in_student(hub, lms)
    for query in ("course=nope", "course=data-201", "course=demo-101&tries=abc"):
        _headers_ok(s.get(f"{hub.url}/hub/coursehub/open?{query}", allow_redirects=False, timeout=30))
    for spec in (LaunchSpec(sub=new_sub(), roles=[f"{M}#Mentor"]), LaunchSpec(sub=new_sub(), context_id="ctx-x"),
                 LaunchSpec(sub=new_sub(), extra={C.ROLES: 5})):
        _headers_ok(launch(requests.Session(), hub.url, lms, spec))
    # the local LMS's auto-post form page
    page = requests.Session()
    page.get(f"{hub.url}/hub/lms", timeout=30)
    r = page.post(f"{hub.url}/hub/lms/launch", timeout=60, data={
        "_xsrf": page.cookies.get("_xsrf", ""), "course": "demo-101", "kind": "course", "item": "",
        "role": "student", "person": "P"})
    assert parse_form(r.text)
    _headers_ok(r)


@pytest.mark.parametrize("roles", [
    [f"{M}#Mentor"], [f"{M}/Manager#Observer"], [f"{M}/Mentor#Advisor"],
    [f"{M}#Mentor", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"],
    ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Observer"],
])
def test_observers_and_mentors_get_an_explanation_and_no_session(lti_env, roles):
    hub, lms = lti_env
    sub = new_sub()
    s = requests.Session()
    r = launch(s, hub.url, lms, LaunchSpec(sub=sub, roles=roles))
    assert r.status_code == 403 and 'data-reason="observer_role"' in r.text
    assert "Observers and mentors" in r.text
    assert_no_side_effect(hub, lms, s, r, sub)


@pytest.mark.parametrize(("roles", "expected"), [
    ([f"{M}#ContentDeveloper"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lti/system/person#TestUser", f"{M}#Learner"], "student"),
    (["http://purl.imsglobal.org/vocab/lti/system/person#TestUser", f"{M}#Instructor"], "student"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"], "student"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"], "student"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator", f"{M}#Learner"], "student"),
    ([f"{M}#Mentor", f"{M}/Instructor#TeachingAssistant"], "ta"),
])
def test_roles_through_the_hub(lti_env, roles, expected):
    hub, lms = lti_env
    sub = new_sub()
    r = launch(requests.Session(), hub.url, lms, LaunchSpec(sub=sub, roles=roles))
    assert r.status_code == 302
    assert hub.user(username_for(lms, sub))["groups"] == [f"course:demo-101:{expected}"]
