"""The local LMS's AGS/NRPS services: the token endpoint accepts exactly the assertion our own grade
sync signs (and refuses replays, other keys, other audiences), line items and scores behave as AGS
says (newest result wins), the roster holds whoever launched, and launches announce the services."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from urllib.parse import parse_qs

import jwt
import pytest

from coursehub.grading.lms.records import AGS_LINEITEM, AGS_SCORE, NRPS_MEMBERSHIP
from coursehub.grading.lms.tokens import TokenClient, ToolKey
from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_catalog
from coursehub.platform.local_lms.lms import LocalLms
from coursehub.platform.local_lms.services import LocalServices, ServiceRefused
from coursehub.platform.lti import claims as C
from coursehub.platform.lti.claim_schema import check_claims
from coursehub.platform.lti.keys import generate_key_pair
from coursehub.platform.lti.local_registration import CLIENT_ID, linked_courses

TOKEN_URL = "http://127.0.0.1:8000/hub/lms/token"
TOOL = generate_key_pair()


class FormHttp:
    """Captures the token request our TokenClient makes, and answers it with the local LMS."""

    def __init__(self, services: LocalServices):
        self.services = services

    async def request(self, method, url, body=None, headers=None):  # noqa: ANN001, ANN201
        from coursehub.grading.lms.httpclient import Response

        form = {k: v[0] for k, v in parse_qs(body).items()}
        try:
            return Response(200, {}, json.dumps(self.services.issue_token(form)).encode())
        except ServiceRefused as e:
            return Response(e.status, {}, json.dumps({"error": e.error}).encode())


@pytest.fixture
def services(tmp_path):
    return LocalServices(tmp_path / "svc.json", CLIENT_ID, TOKEN_URL, TOOL.public_jwk)


def form(assertion: str, scope: str = AGS_SCORE) -> dict:
    return {"grant_type": "client_credentials", "scope": scope, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


def test_our_grade_sync_gets_a_token_and_attacks_do_not(services):
    tool = ToolKey(TOOL.private_pem, TOOL.kid)
    client = TokenClient(tool, http=FormHttp(services))
    token = asyncio.run(client.token(TOKEN_URL, CLIENT_ID, [AGS_LINEITEM, AGS_SCORE, "https://evil/scope"]))
    services.check_bearer(f"Bearer {token}", AGS_SCORE)  # granted
    with pytest.raises(ServiceRefused) as e:
        services.check_bearer(f"Bearer {token}", NRPS_MEMBERSHIP)  # not asked for: not granted
    assert e.value.status == 403
    with pytest.raises(ServiceRefused) as e:
        services.check_bearer("Bearer made-up", AGS_SCORE)
    assert e.value.status == 401

    assertion = client.client_assertion(TOKEN_URL, CLIENT_ID)
    services.issue_token(form(assertion))
    with pytest.raises(ServiceRefused, match="already used"):  # a replayed assertion
        services.issue_token(form(assertion))
    other = generate_key_pair()
    forged = TokenClient(ToolKey(other.private_pem, TOOL.kid)).client_assertion(TOKEN_URL, CLIENT_ID)
    with pytest.raises(ServiceRefused, match="refused"):  # right kid, wrong key
        services.issue_token(form(forged))
    with pytest.raises(ServiceRefused):  # an assertion made for another LMS's token URL
        services.issue_token(form(client.client_assertion("https://lms.example/token", CLIENT_ID)))
    with pytest.raises(ServiceRefused):  # another client
        services.issue_token(form(client.client_assertion(TOKEN_URL, "someone-else")))
    with pytest.raises(ServiceRefused) as e:
        services.issue_token({**form(client.client_assertion(TOKEN_URL, CLIENT_ID)), "grant_type": "password"})
    assert e.value.error == "unsupported_grant_type"


def test_lineitems_scores_and_gradebook(services, tmp_path):
    services.record_member("ctx", "Demo", user_id="local-ana", name="Ana <b>", email="a@x", roles=["Learner"])
    base = "http://127.0.0.1:8000/hub/lms/ags/ctx/lineitems"
    item = services.create_lineitem("ctx", base, {"label": "PS 1", "scoreMaximum": 9, "resourceId": "ps1",
                                                  "tag": "coursehub", "id": "http://evil/x"})
    assert item["id"] == f"{base}/1"  # the LMS names it, not the client
    assert services.lineitems("ctx", resource_id="ps1", tag="coursehub") == [item]
    assert services.lineitems("ctx", resource_id="ps2") == []
    for bad in ({"label": "", "scoreMaximum": 9}, {"label": "x", "scoreMaximum": 0}, {"label": "x"}, []):
        with pytest.raises(ServiceRefused):
            services.create_lineitem("ctx", base, bad)
    services.update_lineitem("ctx", "1", {"label": "Problem set 1", "scoreMaximum": 10, "resourceId": "ps1"})
    t = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    score = {"userId": "local-ana", "scoreGiven": 7, "scoreMaximum": 10, "activityProgress": "Completed",
             "gradingProgress": "FullyGraded"}
    services.post_score("ctx", "1", {**score, "timestamp": t.isoformat()})
    services.post_score("ctx", "1", {**score, "scoreGiven": 2, "timestamp": (t - dt.timedelta(hours=1)).isoformat()})
    with pytest.raises(ServiceRefused):
        services.post_score("ctx", "1", {**score})  # no timestamp
    with pytest.raises(ServiceRefused) as e:
        services.post_score("ctx", "7", {**score, "timestamp": t.isoformat()})
    assert e.value.status == 404
    again = LocalServices(tmp_path / "svc.json", CLIENT_ID, TOKEN_URL, TOOL.public_jwk)  # after a restart
    book = again.gradebook("ctx")
    assert [i["label"] for i in book["items"]] == ["Problem set 1"]
    assert [(r["member"]["name"], r["scores"][0]["scoreGiven"]) for r in book["rows"]] == [("Ana <b>", 7)]
    assert again.members("ctx")[0]["user_id"] == "local-ana"


def test_launch_announces_ags_and_nrps_and_joins_the_roster(tmp_path):
    course, ctx = linked_courses(load_catalog(SOURCE_ROOT / "courses"))[0]
    issuer = "http://127.0.0.1:8000/hub/lms"
    services = LocalServices(tmp_path / "svc.json", CLIENT_ID, TOKEN_URL, TOOL.public_jwk)
    lms = LocalLms(tmp_path, issuer, services)
    hint, launch = lms.start(person="Bo Student", role="student", course=course, context=ctx, kind="course", item="")
    token = lms.id_token(lms.take(hint), nonce="n", target_link_uri="http://127.0.0.1:8000/x")
    claims = jwt.decode(token, options={"verify_signature": False})
    check_claims(claims)  # what the hub's launch validation accepts
    assert claims[C.AGS_ENDPOINT]["lineitems"].startswith(issuer + "/ags/")
    assert set(claims[C.AGS_ENDPOINT]["scope"]) >= {AGS_LINEITEM, AGS_SCORE}
    assert claims[C.NRPS]["context_memberships_url"] == lms.memberships_url(ctx.context_id)
    assert [m["name"] for m in services.members(ctx.context_id)] == ["Bo Student"]
    assert services.members(ctx.context_id)[0]["user_id"] == claims["sub"]
