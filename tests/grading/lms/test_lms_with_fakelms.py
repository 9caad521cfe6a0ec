"""The grade-sync client against the issue-3 fake LMS (tests/fakelms/server.py): the two sides agree
on the token assertion, line items, scores, faults and NRPS paging."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

from fakelms import running_fake_lms
from sqlalchemy import select
from support.lms_doubles import StaticServices

from coursehub.grading.lms.models import ScoreRow
from coursehub.grading.lms.outbox import Grade, Sender, enqueue
from coursehub.grading.lms.records import LaunchServices, ServiceRegistration
from coursehub.grading.lms.services import ServiceClient
from coursehub.grading.lms.tokens import TokenClient, ToolKey


def _jwks_data_url(pair) -> str:
    return "data:application/json;base64," + base64.b64encode(json.dumps(pair.jwks()).encode()).decode()


async def test_scores_and_roster_against_the_fake_lms(sessions, tool_pair):
    with running_fake_lms(tool_jwks_url=_jwks_data_url(tool_pair)) as lms:
        platform = ServiceRegistration(name="fakelms", issuer=lms.issuer, token_url=f"{lms.url}/token")
        ags, nrps = lms.ags_claim("ctx-101"), lms.nrps_claim("ctx-101")

        def launch(who: str) -> LaunchServices:
            return LaunchServices(platform=platform, client_id=lms.client_id, course_id="c1", username=who,
                                  lti_user_id=f"sub-{who}", context_id="ctx-101", lineitems_url=ags["lineitems"],
                                  nrps_url=nrps["context_memberships_url"], ags_scopes=tuple(ags["scope"]))

        source = StaticServices([launch("ann"), launch("bob")])
        client = ServiceClient(TokenClient(ToolKey(tool_pair.private_pem, tool_pair.kid)))
        sender = Sender(sessions, source, client)
        t = dt.datetime.now(dt.UTC)
        with sessions() as s:
            enqueue(s, Grade("c1", "ps1", "ann", 7.0, 10.0, t))
            enqueue(s, Grade("c1", "ps1", "bob", 4.5, 10.0, t))
        lms.inject_fault("scores", 429, retry_after=1)
        # the LMS's Retry-After holds every send to it, not only the refused score's
        assert await sender.send_due() == {"retry": 1, "deferred": 1}
        lms.expire_tokens()  # the token dies before the retry
        time.sleep(1.1)
        assert await sender.send_due() == {"sent": 2}
        (url,) = lms.scores
        assert sorted((s["userId"], s["scoreGiven"]) for s in lms.scores[url]) == [("sub-ann", 7.0), ("sub-bob", 4.5)]
        assert url.startswith(ags["lineitems"])
        with sessions() as s:
            assert {r.status for r in s.scalars(select(ScoreRow))} == {"sent"}

        lms.members = [{"user_id": f"u{i}", "roles": [], "status": "Active"} for i in range(5)]
        page = await client.members(launch("prof"))
        assert page.complete and page.pages == 3 and [m["user_id"] for m in page.members] == [f"u{i}" for i in range(5)]
