"""The launch validator, claim by claim (the same refusals run against the real hub in
tests/integration/lti)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from coursehub.platform.lti import claims as C
from coursehub.platform.lti.keys import generate_key_pair
from coursehub.platform.lti.refusal import LaunchRefused

from .conftest import CLIENT


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_valid_launch(validator, platform, registration):
    launch = await validator.validate(platform.token(), registration, "n-1")
    assert launch.client_id == CLIENT and launch.subject == "s-1" and launch.deployment_id == "d-1"


async def test_leeway_accepts_small_clock_skew(validator, platform, registration):
    now = int(time.time())
    token = platform.token(iat=now + 30, exp=now + 330)
    assert (await validator.validate(token, registration, "n-1")).subject == "s-1"


async def test_nonce_is_single_use(validator, platform, registration):
    token = platform.token()
    await validator.validate(token, registration, "n-1")
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(token, registration, "n-1")
    assert e.value.reason == "replayed"


async def test_nonce_not_issued_by_us(validator, platform, registration):
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(platform.token(nonce="other"), registration, "other")
    assert e.value.reason == "replayed"


def forged_tokens(platform):
    claims = platform.claims()
    key = platform.keys[-1]
    body = b64(json.dumps(claims).encode())
    pem = key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_head = b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    return {
        "none": f"{b64(json.dumps({'alg': 'none', 'kid': key.kid}).encode())}.{body}.",
        "hs256_public_key": f"{hs_head}.{body}.{b64(hmac.new(pem, f'{hs_head}.{body}'.encode(), hashlib.sha256).digest())}",
        "bad_signature": jwt.encode(claims, generate_key_pair().private_pem, "RS256", headers={"kid": key.kid}),
        "unknown_key": jwt.encode(claims, generate_key_pair().private_pem, "RS256", headers={"kid": "zzz"}),
        "rs512_not_allowed": jwt.encode(claims, key.private_pem, "RS512", headers={"kid": key.kid}),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(("name", "reason"), [
    ("none", "algorithm_not_allowed"), ("hs256_public_key", "algorithm_not_allowed"),
    ("bad_signature", "bad_signature"), ("unknown_key", "unknown_key"),
    ("rs512_not_allowed", "algorithm_not_allowed"), ("garbage", "malformed_token"),
])
async def test_forged_signatures(validator, platform, registration, name, reason):
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(forged_tokens(platform)[name], registration, "n-1")
    assert e.value.reason == reason
    assert validator.consume_nonce("n-1")  # a refused launch did not spend the nonce of a real one


NOW = int(time.time())


@pytest.mark.parametrize(("changes", "drop", "reason"), [
    ({"aud": "other"}, None, "wrong_audience"),
    ({"aud": [CLIENT, "other"]}, None, "azp_missing"),
    ({"aud": [CLIENT, "other"], "azp": "other"}, None, "wrong_audience"),
    ({"azp": "other"}, None, "wrong_audience"),
    ({"iss": "https://evil.example"}, None, "wrong_issuer"),
    ({"exp": NOW - 120}, None, "expired"),
    ({"iat": NOW + 600, "exp": NOW + 900}, None, "issued_in_future"),
    ({"iat": NOW - 1000, "exp": NOW + 900}, None, "too_old"),
    ({}, "nonce", "missing_claim"),
    ({}, "sub", "missing_claim"),
    ({}, "exp", "missing_claim"),
    ({}, C.ROLES, "missing_claim"),
    ({}, C.DEPLOYMENT_ID, "missing_claim"),
    ({}, C.TARGET_LINK_URI, "missing_claim"),
    ({C.RESOURCE_LINK: {"id": ""}}, None, "missing_claim"),
    ({C.VERSION: "1.1.0"}, None, "wrong_version"),
    ({C.MESSAGE_TYPE: C.DEEP_LINKING_REQUEST}, None, "missing_claim"),  # no deep_linking_settings
    ({C.MESSAGE_TYPE: "Whatever"}, None, "wrong_message_type"),
    ({C.DEPLOYMENT_ID: "d-evil"}, None, "unknown_deployment"),
    ({C.ROLES: "Learner"}, None, "invalid_claim"),
])
async def test_claim_refusals(validator, platform, registration, changes, drop, reason):
    # Times in the table are relative to collection; the suite may reach this test minutes later.
    late = int(time.time()) - NOW
    changes = {k: v + late if k in ("iat", "exp") else v for k, v in changes.items()}
    claims = platform.claims(**changes)
    if drop:
        claims.pop(drop)
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(platform.token(claims), registration, "n-1")
    assert e.value.reason == reason
    assert 400 <= e.value.status < 500


async def test_several_audiences_with_our_azp_accepted(validator, platform, registration):
    token = platform.token(aud=["other", CLIENT], azp=CLIENT)
    assert (await validator.validate(token, registration, "n-1")).client_id == CLIENT


async def test_nonce_must_match_this_browser(validator, platform, registration):
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(platform.token(), registration, None)
    assert e.value.reason == "nonce_mismatch"
    assert e.value.page == "lti_cookies.html"


async def test_jwks_outage_is_a_temporary_refusal(validator, platform, registration):
    platform.fail = True
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(platform.token(), registration, "n-1")
    assert (e.value.reason, e.value.status) == ("jwks_unavailable", 502)


def test_registration_refuses_symmetric_algorithms():
    from coursehub.platform.lti.registry import LaunchRegistration

    with pytest.raises(ValueError, match="asymmetric"):
        LaunchRegistration(name="x", issuer="i", client_ids=("c",), deployment_ids=("d",), auth_login_url="a",
                     jwks_url="j", token_url="t", algorithms=("HS256",))
