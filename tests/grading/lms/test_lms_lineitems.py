"""Line items: one per assignment and LMS context, whatever races; course.yaml's title and points.

The fake LMS, like most LMSes, sends no ETag and happily makes two line items for one resourceId
when two POSTs arrive: the tool has to make sure only one POST is ever sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from coursehub.grading.lms import lineitems
from coursehub.grading.lms.lineitems import Wanted, sync_lineitems
from coursehub.grading.lms.models import LineItemRow, ScoreRow
from coursehub.grading.lms.outbox import Grade, Sender, enqueue
from coursehub.grading.lms.services import ServiceClient

from .conftest import launch

T0 = dt.datetime(2026, 11, 20, 10, 0, 0)


def grade(student: str, assignment: str = "ps1", score: float = 7.0) -> Grade:
    return Grade("c1", assignment, student, score, 10.0, T0)


def lineitem_posts(lms) -> int:
    return sum(1 for m, p in lms.requests if m == "POST" and p.endswith("/lineitems"))


async def _until(cond, rounds: int = 2000) -> None:
    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


async def test_two_service_processes_sending_at_once_create_one_lineitem(sessions, students, client, clock, lms,
                                                                          monkeypatch):
    # two processes share nothing but the database: no in-process lock between their senders
    monkeypatch.setattr(lineitems, "_local_lock", lambda key: asyncio.Lock())
    lms.hold_creates = asyncio.Event()
    with sessions() as s:
        enqueue(s, grade("ann"))
        enqueue(s, grade("bob"))
    first = Sender(sessions, students, client, clock=clock)
    second = Sender(sessions, students, ServiceClient(client.tokens, client.http), clock=clock)
    a = asyncio.ensure_future(first.send_due())
    await _until(lambda: lineitem_posts(lms) == 1)  # the first one's create is at the LMS, held there
    out_b = await second.send_due()  # ann's row is being sent; bob's column is being created
    assert out_b == {"deferred": 1}
    assert lineitem_posts(lms) == 1, "the second process must not POST a line item of its own"
    lms.hold_creates.set()
    out_a = await a
    assert out_a.get("sent") == 1
    clock.advance(5)
    assert await second.send_due() == {"sent": 1}
    assert len(lms.lineitems["ctx1"]) == 1 and lineitem_posts(lms) == 1
    assert {k[1] for k in lms.results} == {1} and {k[2] for k in lms.results} == {"sub-ann", "sub-bob"}


async def test_senders_of_one_process_wait_for_each_other(sessions, students, client, clock, lms):
    lms.hold_creates = asyncio.Event()
    with sessions() as s:
        for who in ("ann", "bob", "cy"):
            enqueue(s, grade(who))
    senders = [Sender(sessions, students, ServiceClient(client.tokens, client.http), clock=clock) for _ in range(3)]
    runs = asyncio.gather(*(snd.send_one(i) for snd, i in zip(senders, (1, 2, 3), strict=True)))
    await _until(lambda: lineitem_posts(lms) == 1)
    lms.hold_creates.set()
    assert sorted(await runs) == ["sent", "sent", "sent"]
    assert len(lms.lineitems["ctx1"]) == 1


async def test_a_lapsed_claim_after_a_crash_reuses_the_item_the_lms_already_has(sessions, students, client,
                                                                                clock, lms, platform):
    # a process claimed the line item, POSTed it, and died before storing its URL
    item = {"id": f"{lms.lineitems_url('ctx1')}/1", "label": "ps1", "scoreMaximum": 10.0, "resourceId": "ps1",
            "tag": "coursehub"}
    lms.lineitems["ctx1"] = {1: item}
    now = dt.datetime.fromtimestamp(clock(), dt.UTC).replace(tzinfo=None)
    with sessions() as s:
        s.add(LineItemRow(issuer=platform.issuer, lineitems_url=lms.lineitems_url("ctx1"), assignment="ps1",
                          course_id="c1", lineitem_url=None, status="claimed", claimed_until=now - dt.timedelta(1),
                          label="", score_maximum=None, updated_at=now))
        s.commit()
        enqueue(s, grade("ann"))
    assert await Sender(sessions, students, client, clock=clock).send_due() == {"sent": 1}
    assert len(lms.lineitems["ctx1"]) == 1 and lineitem_posts(lms) == 0


async def test_lineitems_follow_course_yaml_and_scores_find_their_own(sessions, students, client, clock, lms,
                                                                     platform):
    svc = launch(platform, lms, "prof")
    # an instructor deep-linked ps1 already: the LMS made its item with our resourceId and tag
    lms.lineitems["ctx1"] = {1: {"id": f"{lms.lineitems_url('ctx1')}/1", "label": "Problem set 1 (link)",
                                 "scoreMaximum": 10, "resourceId": "ps1", "tag": "coursehub"}}
    wanted = [Wanted("ps1", "Problem set 1", 10.0), Wanted("ps2", "Problem set 2", 5.0)]
    with sessions() as s:
        assert await sync_lineitems(s, client, svc, wanted, course_id="c1", now=T0) == {"ps1": "ok", "ps2": "ok"}
        again = await sync_lineitems(s, client, svc, wanted, course_id="c1", now=T0)
    assert again == {"ps1": "ok", "ps2": "ok"}
    items = {i["resourceId"]: i for i in lms.lineitems["ctx1"].values()}
    assert len(lms.lineitems["ctx1"]) == 2
    assert (items["ps1"]["label"], items["ps2"]["label"], items["ps2"]["scoreMaximum"]) == (
        "Problem set 1", "Problem set 2", 5.0)
    assert len(lms.lineitem_puts) == 1  # the deep-linked label became course.yaml's title, once

    # course.yaml: ps2 is now worth 20 points and renamed
    wanted[1] = Wanted("ps2", "Homework 2", 20.0)
    with sessions() as s:
        await sync_lineitems(s, client, svc, wanted, course_id="c1", now=T0)
    items = {i["resourceId"]: i for i in lms.lineitems["ctx1"].values()}
    assert (items["ps2"]["label"], items["ps2"]["scoreMaximum"]) == ("Homework 2", 20.0)
    assert len(lms.lineitems["ctx1"]) == 2 and lineitem_posts(lms) == 1

    # scores go to their own assignment's item; the sender uses course.yaml's spec, not the score's
    spec = {("c1", "ps1"): ("Problem set 1", 10.0), ("c1", "ps2"): ("Homework 2", 20.0)}
    with sessions() as s:
        enqueue(s, grade("ann", "ps1", 9.0))
        enqueue(s, grade("ann", "ps2", 3.0))
    sender = Sender(sessions, students, client, clock=clock, lineitem_spec=lambda c, a: spec.get((c, a)))
    assert await sender.send_due() == {"sent": 2}
    by_item = {n: r["scoreGiven"] for (_c, n, _u), r in lms.results.items()}
    ids = {i["resourceId"]: int(i["id"].rsplit("/", 1)[1]) for i in lms.lineitems["ctx1"].values()}
    assert by_item == {ids["ps1"]: 9.0, ids["ps2"]: 3.0}
    assert len(lms.lineitem_puts) == 2 and len(lms.lineitems["ctx1"]) == 2
    with sessions() as s:
        assert {r.assignment: r.lineitem_url.rsplit("/", 1)[1] for r in s.scalars(select(ScoreRow))} == {
            "ps1": str(ids["ps1"]), "ps2": str(ids["ps2"])}


async def test_an_lms_that_refuses_the_update_still_gets_the_scores(sessions, students, client, clock, lms,
                                                                    platform):
    from fakelms.ags import Fault

    svc = launch(platform, lms, "prof")
    with sessions() as s:
        await sync_lineitems(s, client, svc, [Wanted("ps1", "Problem set 1", 10.0)], course_id="c1", now=T0)
    lms.faults.append(Fault("lineitems", 403))  # the next line item call: the PUT
    with sessions() as s:
        out = await sync_lineitems(s, client, svc, [Wanted("ps1", "PS 1", 10.0)], course_id="c1", now=T0)
    assert out["ps1"].startswith("failed: updating a line item: HTTP 403")
    lms.faults.append(Fault("lineitems", 403))
    with sessions() as s:
        enqueue(s, grade("ann"))
    sender = Sender(sessions, students, client, clock=clock, lineitem_spec=lambda c, a: ("PS 1", 10.0))
    assert await sender.send_due() == {"sent": 1}
    assert len(lms.results) == 1 and len(lms.lineitems["ctx1"]) == 1
