"""Platform-signed launches with claims of the wrong JSON type or size: a clear 4xx before any side
effect (the nonce is not spent), an audit-ready refusal naming client and deployment, never the value;
and every claim the schema lets through fits the LTI tables, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import jwt
import pytest

from coursehub.platform.lti import claims as C
from coursehub.platform.lti.claim_schema import EMAIL_MAX, ID_MAX, NAME_MAX, check_claims
from coursehub.platform.lti.identity import username_candidates
from coursehub.platform.lti.refusal import LaunchRefused
from coursehub.platform.lti.store import LtiStore

from .conftest import CLIENT

MB = "x" * 2**20

#: (claim path, wrong value): every claim the hub reads or keeps, with JSON types it must not accept.
WRONG_TYPES = [
    ("sub", 42), ("sub", ["s"]), ("sub", {"id": "s"}), ("sub", None), ("sub", True),
    ("iat", "12345"), ("iat", True), ("exp", "99999999999"),
    ("nonce", 5), ("azp", [CLIENT]), ("aud", {"a": 1}), ("aud", [CLIENT, 5]),
    ("name", {"first": "A"}), ("name", ["A"]), ("email", 7), ("given_name", []), ("family_name", 1.5),
    (C.DEPLOYMENT_ID, 1), (C.DEPLOYMENT_ID, ["d-1"]), (C.DEPLOYMENT_ID, {"id": "d-1"}),
    (C.TARGET_LINK_URI, 5), (C.TARGET_LINK_URI, ["https://x"]),
    (C.RESOURCE_LINK, "rl-1"), (C.RESOURCE_LINK, ["rl-1"]), (C.RESOURCE_LINK, {"id": 5}),
    (C.RESOURCE_LINK, {"id": ["rl"]}), (C.RESOURCE_LINK, {"id": "rl", "title": {"t": 1}}),
    (C.ROLES, "Learner"), (C.ROLES, {"r": 1}), (C.ROLES, [5]), (C.ROLES, [["Learner"]]),
    (C.CONTEXT, "ctx"), (C.CONTEXT, ["ctx"]), (C.CONTEXT, {"id": 5}), (C.CONTEXT, {"id": "c", "label": 5}),
    (C.CONTEXT, {"id": "c", "title": []}), (C.CONTEXT, {"id": "c", "type": "Course"}),
    (C.CUSTOM, "assignment=ps1"), (C.CUSTOM, ["ps1"]),
    (C.AGS_ENDPOINT, ["https://lms/li"]), (C.AGS_ENDPOINT, {"lineitems": 5}), (C.AGS_ENDPOINT, {"scope": "x"}),
    (C.NRPS, "https://lms/m"), (C.NRPS, {"context_memberships_url": 5}), (C.NRPS, {}),
    (C.LAUNCH_PRESENTATION, "window"), (C.TOOL_PLATFORM, 5),
]

TOO_LONG = [
    ("sub", "s" * (ID_MAX + 1)), ("sub", MB), ("name", MB), ("name", "n" * (NAME_MAX + 1)),
    ("email", MB), ("email", "e" * (EMAIL_MAX + 1)), ("given_name", MB),
    (C.DEPLOYMENT_ID, MB), (C.TARGET_LINK_URI, MB),
    (C.RESOURCE_LINK, {"id": MB}), (C.RESOURCE_LINK, {"id": "rl", "title": MB}),
    (C.CONTEXT, {"id": MB}), (C.CONTEXT, {"id": "c", "title": MB}),
    (C.ROLES, ["Learner"] * 1000), (C.ROLES, [MB]),
    (C.CUSTOM, {"assignment": MB}), (C.AGS_ENDPOINT, {"lineitems": MB}),
    ("https://example.edu/claim/anything-else", MB),
]


async def _refused(validator, platform, registration, claims) -> LaunchRefused:
    token = jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), platform.keys[-1].private_pem, "RS256",
                                       headers={"kid": platform.keys[-1].kid})
    with pytest.raises(LaunchRefused) as e:
        await validator.validate(token, registration, "n-1")
    return e.value


@pytest.mark.parametrize(("claim", "value"), WRONG_TYPES, ids=[f"{c.rsplit('/', 1)[-1]}={v!r:.20}" for c, v in WRONG_TYPES])
async def test_wrong_types_refused_before_any_side_effect(validator, platform, registration, claim, value):
    claims = platform.claims(**{claim: value})
    refusal = await _refused(validator, platform, registration, claims)
    assert 400 <= refusal.status < 500
    assert refusal.reason in ("invalid_claim", "missing_claim", "invalid_token", "wrong_audience"), refusal.reason
    assert validator.consume_nonce("n-1")  # nothing was written: the nonce of the real launch is unspent
    assert repr(value)[:40] not in refusal.detail or len(repr(value)) < 4


@pytest.mark.parametrize(("claim", "value"), TOO_LONG, ids=[f"{c.rsplit('/', 1)[-1]}-{i}" for i, (c, _) in enumerate(TOO_LONG)])
async def test_oversized_claims_refused_without_echo(validator, platform, registration, claim, value):
    refusal = await _refused(validator, platform, registration, platform.claims(**{claim: value}))
    assert refusal.status == 400 and refusal.reason in ("claim_too_long", "invalid_claim"), refusal.reason
    assert "xxxxxxxx" not in refusal.detail + refusal.message
    assert validator.consume_nonce("n-1")


async def test_verified_refusals_carry_client_and_deployment_for_the_audit(validator, platform, registration):
    refusal = await _refused(validator, platform, registration, platform.claims(sub=["s"]))
    assert refusal.ids == {"client_id": CLIENT, "deployment": "d-1"}
    refusal = await _refused(validator, platform, registration, platform.claims(**{C.DEPLOYMENT_ID: "d-evil"}))
    assert refusal.reason == "unknown_deployment" and refusal.ids["deployment"] == "d-evil"
    refusal = await _refused(validator, platform, registration, platform.claims(nonce="spent-elsewhere"))
    assert refusal.ids == {"client_id": CLIENT, "deployment": "d-1"}


def test_email_and_name_never_in_refusal_detail():
    claims = {"sub": "s", "email": {"secret": "ada@uni.example"}, "name": "Ada Lovelace"}
    with pytest.raises(LaunchRefused) as e:
        check_claims(claims)
    assert "ada@" not in e.value.detail and "Lovelace" not in e.value.detail


def test_link_claim_must_be_a_short_string():
    ok = {"iss": "i"}
    with pytest.raises(LaunchRefused) as e:
        check_claims({**ok, "upn": ["a"]}, extra_strings=("upn",))
    assert e.value.reason in ("invalid_claim", "missing_claim")


def longest_identity(store: LtiStore) -> None:
    """Every value at the schema's limits, with multi-byte characters, goes in and comes back."""
    issuer = "https://lms.example/" + "i" * 400
    subject = "é" * ID_MAX
    ident = store.claim_identity(issuer, subject, username_candidates("canvas", issuer, subject),
                                 display_name="名" * NAME_MAX, email="m" * EMAIL_MAX, link_value="l" * NAME_MAX)
    assert store.find_identity(issuer, subject).display_name == "名" * NAME_MAX
    store.save_services(username=ident.username, course="demo-101", platform="canvas", issuer=issuer,
                        client_id="c" * ID_MAX, deployment_id="d" * ID_MAX, context_id="x" * ID_MAX,
                        subject=subject, role="student", ags={"lineitems": "u" * 2048}, nrps=None,
                        resource_link={"id": "r" * ID_MAX, "title": "t" * 1024})
    with pytest.raises(ValueError, match="subject") as e:
        store.claim_identity(issuer, "s" * 600, ["x-1"])
    assert "sss" not in str(e.value)
    # display values longer than their column (another sign-in path) are cut, never a database error
    other = store.claim_identity(issuer, "other", ["x-2"], display_name="n" * 5000, email="e" * 5000)
    assert len(other.display_name) == 512 and len(other.email) == 512


def test_schema_limits_fit_the_tables_sqlite(tmp_path):
    store = LtiStore(f"sqlite:///{tmp_path / 'lti.sqlite'}")
    try:
        longest_identity(store)
    finally:
        store.dispose()


def test_schema_limits_fit_the_tables_postgresql(pg_url, caplog):
    store = LtiStore(pg_url)
    try:
        longest_identity(store)
        # Even a value that reaches the database too long is logged without its parameters.
        with store.engine.begin() as c, pytest.raises(Exception) as e:
            from coursehub.platform.lti.store import identities

            c.execute(identities.insert().values(issuer="i", subject="s", username="u", updated_at=0,
                                                 display_name="Ada Lovelace " * 100, email="ada@uni.example"))
        assert "ada@uni.example" not in str(e.value) and "Lovelace" not in str(e.value)
    finally:
        store.dispose()
