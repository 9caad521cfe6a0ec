"""Deep Linking 2.0: requests validated like launches, staff-only picks, the signed response."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest

from coursehub.platform.courses import Course
from coursehub.platform.lti import claims as C
from coursehub.platform.lti.deep_linking import check_request, choices, content_item, response_token
from coursehub.platform.lti.keys import generate_key_pair
from coursehub.platform.lti.refusal import LaunchRefused
from coursehub.platform.lti.registry import LaunchRegistration, origin_of

from .conftest import CLIENT, ISS

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
RETURN = f"{ISS}/deep_linking/return"


def dl_claims(platform, **settings):
    claims = platform.claims(**{C.MESSAGE_TYPE: C.DEEP_LINKING_REQUEST, C.ROLES: [INSTRUCTOR]})
    del claims[C.RESOURCE_LINK]
    claims[C.DEEP_LINKING_SETTINGS] = {"deep_link_return_url": RETURN, "accept_types": ["ltiResourceLink"],
                                       "data": "opaque-1", **settings}
    return claims


@pytest.fixture
def course(tmp_path):
    (tmp_path / "textbook").mkdir()
    (tmp_path / "textbook" / "01-welcome.ipynb").write_text("{}")
    return Course.model_validate({
        "id": "demo-101", "title": "Demo", "textbook": {"path": "textbook"}, "folder": tmp_path,
        "assignments": [{"id": "ps1", "title": "Problem set 1", "points": 10, "due": "2026-12-18T23:59:00+01:00"},
                        {"id": "quiz", "title": "Ungraded"}],
    })


async def launch_of(validator, platform, registration, **settings):
    return await validator.validate(platform.token(dl_claims(platform, **settings)), registration, "n-1")


async def test_deep_linking_request_is_validated_like_a_launch(validator, platform, registration, course):
    launch = await launch_of(validator, platform, registration)
    assert launch.message_type == C.DEEP_LINKING_REQUEST
    request = check_request(launch, "instructor", course)
    assert (request.return_url, request.data, request.course_id) == (RETURN, "opaque-1", "demo-101")
    assert request.accept_multiple is False  # absent: one item


@pytest.mark.parametrize(("change", "reason"), [
    ({"drop": True}, "missing_claim"),
    ({"accept_types": "ltiResourceLink"}, "invalid_claim"),
    ({"deep_link_return_url": 5}, "invalid_claim"),
    ({"data": "x" * 9000}, "claim_too_long"),
    ({"accept_multiple": "yes"}, "invalid_claim"),
])
async def test_malformed_settings_refused(validator, platform, registration, change, reason):
    claims = dl_claims(platform)
    if change.pop("drop", False):
        del claims[C.DEEP_LINKING_SETTINGS]
    claims[C.DEEP_LINKING_SETTINGS] = {**claims.get(C.DEEP_LINKING_SETTINGS, {}), **change} if change else \
        claims.get(C.DEEP_LINKING_SETTINGS)
    if claims[C.DEEP_LINKING_SETTINGS] is None:
        del claims[C.DEEP_LINKING_SETTINGS]
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(platform.token(claims), registration, "n-1")
    assert e.value.reason == reason
    assert validator.consume_nonce("n-1")  # refused before the nonce was spent


async def test_forged_and_replayed_requests_refused(validator, platform, registration):
    forged = jwt.encode(dl_claims(platform), generate_key_pair().private_pem, "RS256",
                        headers={"kid": platform.keys[-1].kid})
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(forged, registration, "n-1")
    assert e.value.reason == "bad_signature"
    token = platform.token(dl_claims(platform))
    await validator.validate(token, registration, "n-1")
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(token, registration, "n-1")
    assert e.value.reason == "replayed"


@pytest.mark.parametrize(("role", "settings", "reason"), [
    ("student", {}, "deep_link_not_staff"),
    ("observer", {}, "deep_link_not_staff"),
    ("instructor", {"accept_types": ["file", "html"]}, "deep_link_type_not_accepted"),
    ("instructor", {"deep_link_return_url": "https://evil.example/return"}, "deep_link_return_off_host"),
    ("ta", {"deep_link_return_url": "http://lms.example.edu/return"}, "deep_link_return_off_host"),
    ("ta", {"deep_link_return_url": "https://lms.example.edu.evil.example/x"}, "deep_link_return_off_host"),
    ("ta", {"deep_link_return_url": "https://user@lms.example.edu/x"}, "deep_link_return_off_host"),
    ("ta", {"deep_link_return_url": "javascript:alert(1)"}, "deep_link_return_off_host"),
])
async def test_refusals(validator, platform, registration, course, role, settings, reason):
    launch = await launch_of(validator, platform, registration, **settings)
    with pytest.raises(LaunchRefused) as e:
        check_request(launch, role, course)
    assert e.value.reason == reason and 400 <= e.value.status < 500


async def test_return_url_on_a_service_origin_accepted(validator, platform, course):
    reg = LaunchRegistration(name="lms", issuer=ISS, client_ids=(CLIENT,), deployment_ids=("d-1",),
                       auth_login_url=f"{ISS}/auth", jwks_url=f"{ISS}/jwks", token_url=f"{ISS}/token",
                       origins=("https://school.instructure.example",))
    validator.registry.registrations[0] = reg
    validator.registry._jwks["lms"]._fetcher = platform.fetch
    launch = await validator.validate(platform.token(dl_claims(
        platform, deep_link_return_url="https://school.instructure.example/courses/1/deep_linking_response")),
        reg, "n-1")
    assert check_request(launch, "ta", course).return_url.startswith("https://school.instructure.example/")


def test_origin_of():
    assert origin_of("https://LMS.example.edu:443/x") == "https://lms.example.edu"
    assert origin_of("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert origin_of("ftp://lms.example.edu/") == origin_of("not a url") == ""


def test_choices_and_content_items(course):
    picks = {c.key: c for c in choices(course)}
    assert list(picks) == ["assignment:ps1", "assignment:quiz", "textbook:01-welcome"]
    item = content_item(course, picks["assignment:ps1"], "https://hub.example/hub/")
    assert item == {
        "type": "ltiResourceLink", "title": "Problem set 1",
        "url": "https://hub.example/hub/coursehub/open?assignment=ps1", "custom": {"assignment": "ps1"},
        "lineItem": {"scoreMaximum": 10, "label": "Problem set 1", "resourceId": "ps1", "tag": "coursehub"},
        "submission": {"endDateTime": "2026-12-18T22:59:00Z"},
    }
    assert "lineItem" not in content_item(course, picks["assignment:ps1"], "https://h/hub/", lineitem=False)
    assert "lineItem" not in content_item(course, picks["assignment:quiz"], "https://h/hub/")  # no points
    page = content_item(course, picks["textbook:01-welcome"], "https://h/hub/")
    assert page["custom"] == {"textbook": "01-welcome"} and "lineItem" not in page


async def test_response_token_signed_with_tool_key(validator, platform, registration, course):
    request = check_request(await launch_of(validator, platform, registration), "instructor", course)
    key = generate_key_pair()
    items = [content_item(course, choices(course)[0], "https://hub.example/hub/")]
    token = response_token(request, items, key)
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    claims = jwt.decode(token, jwt.PyJWK(key.public_jwk()).key, algorithms=["RS256"], audience=ISS)
    assert claims["iss"] == CLIENT and claims[C.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert claims[C.DEPLOYMENT_ID] == "d-1" and claims[C.DL_DATA] == "opaque-1"
    assert claims[C.DL_CONTENT_ITEMS] == items and claims["nonce"]
    assert claims["exp"] - claims["iat"] <= 600 and abs(claims["iat"] - time.time()) < 60
    assert dt.datetime.fromtimestamp(claims["exp"], dt.UTC) > dt.datetime.now(dt.UTC)
