"""Grade sync against the fake LMS: happy path, token expiry, 429/503, crash, newest wins, foreign hosts."""

from __future__ import annotations

import datetime as dt
import math

import jwt
import pytest
from fakelms.ags import Fault
from sqlalchemy import select
from support.lms_doubles import StaticServices

from coursehub.grading.lms.models import LineItemRow, ScoreRow
from coursehub.grading.lms.outbox import Grade, InvalidScore, Sender, enqueue, retry_failed, status_counts

from .conftest import CLIENT_ID, launch

T0 = dt.datetime(2026, 11, 20, 10, 0, 0, 123456)


def grade(student: str, score: float, at: dt.datetime = T0, assignment: str = "ps1", maximum: float = 10.0):
    return Grade(course_id="c1", assignment=assignment, student=student, score_given=score,
                 score_maximum=maximum, produced_at=at, label=f"Problem set {assignment}")


def rows(sessions) -> list[ScoreRow]:
    with sessions() as s:
        return list(s.scalars(select(ScoreRow).order_by(ScoreRow.id)))


async def test_happy_path(sessions, students, client, clock, lms):
    with sessions() as s:
        for who, sc in (("ann", 9.5), ("bob", 7.0), ("cy", 0.0)):
            enqueue(s, grade(who, sc))
        enqueue(s, grade("ann", 4.0, assignment="ps2", maximum=5.0))
    sender = Sender(sessions, students, client, clock=clock)
    out = await sender.drain(sleep=lambda _s: None)
    assert out == {"sent": 4}
    items = lms.lineitems["ctx1"]
    assert sorted(i["resourceId"] for i in items.values()) == ["ps1", "ps2"]
    assert all(i["tag"] == "coursehub" for i in items.values())
    assert {i["resourceId"]: i["scoreMaximum"] for i in items.values()} == {"ps1": 10.0, "ps2": 5.0}
    ps1 = next(n for n, i in items.items() if i["resourceId"] == "ps1")
    ann = lms.results[("ctx1", ps1, "sub-ann")]
    assert ann["scoreGiven"] == 9.5 and ann["scoreMaximum"] == 10.0
    assert ann["activityProgress"] == "Completed" and ann["gradingProgress"] == "FullyGraded"
    assert ann["timestamp"] == "2026-11-20T10:00:00.123456+00:00"
    assert lms.results[("ctx1", ps1, "sub-cy")]["scoreGiven"] == 0.0
    # one token for the whole batch, from a proper client assertion
    assert len(lms.token_requests) == 1
    req = lms.token_requests[0]
    assert req["header"]["kid"] and req["header"]["alg"] == "RS256"
    c = req["claims"]
    assert c["iss"] == c["sub"] == CLIENT_ID and c["aud"] == lms.token_url()
    assert 0 < c["exp"] - c["iat"] <= 300
    assert set(req["scope"].split()) == {"https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                         "https://purl.imsglobal.org/spec/lti-ags/scope/score"}
    assert [r.status for r in rows(sessions)] == ["sent"] * 4
    # an existing line item is found, not created again (new course DB, same LMS)
    with sessions() as s:
        s.query(LineItemRow).delete()
        s.commit()
        enqueue(s, grade("dee", 3.0, at=T0 + dt.timedelta(seconds=1)))
    await sender.drain(sleep=lambda _s: None)
    assert len(lms.lineitems["ctx1"]) == 2


async def test_assertions_are_fresh(client, lms, clock):
    a1 = client.tokens.client_assertion(lms.token_url(), CLIENT_ID)
    a2 = client.tokens.client_assertion(lms.token_url(), CLIENT_ID)
    assert jwt.decode(a1, options={"verify_signature": False})["jti"] != \
        jwt.decode(a2, options={"verify_signature": False})["jti"]


async def test_token_expiring_mid_batch(sessions, students, client, clock, lms):
    with sessions() as s:
        for i, who in enumerate(("ann", "bob", "cy", "dee")):
            enqueue(s, grade(who, float(i)))
    sender = Sender(sessions, students, client, clock=clock)
    sent = []

    def revoke_after_second(row):
        sent.append(row.student)
        if len(sent) == 2:
            lms.revoke_tokens()  # the platform drops the token in the middle of the batch

    sender.after_send = revoke_after_second
    assert await sender.drain(sleep=lambda _s: None) == {"sent": 4}
    assert len(lms.token_requests) == 2
    assert sum(1 for p in lms.score_posts) == 4
    assert ("POST", "/token") in lms.requests


async def test_cached_token_renewed_when_it_expires(sessions, students, client, clock, lms):
    lms.token_lifetime = 120
    with sessions() as s:
        enqueue(s, grade("ann", 1.0))
    sender = Sender(sessions, students, client, clock=clock)
    await sender.drain(sleep=lambda _s: None)
    clock.advance(60)  # still valid (lifetime 120, renewal margin 30)
    with sessions() as s:
        enqueue(s, grade("bob", 1.0))
    await sender.drain(sleep=lambda _s: None)
    assert len(lms.token_requests) == 1
    clock.advance(60)  # now inside the renewal margin: a new token before the old one dies
    with sessions() as s:
        enqueue(s, grade("cy", 1.0))
    await sender.drain(sleep=lambda _s: None)
    assert len(lms.token_requests) == 2
    assert not any(p == ('POST', '/token') for p in lms.requests[-1:])


async def test_429_retry_after_is_honoured(sessions, students, client, clock, lms):
    with sessions() as s:
        enqueue(s, grade("ann", 5.0))
    lms.faults.append(Fault("scores", 429, {"Retry-After": "7"}))
    sender = Sender(sessions, students, client, clock=clock)
    assert await sender.send_due() == {"retry": 1}
    (row,) = rows(sessions)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == dt.datetime.fromtimestamp(clock() + 7, dt.UTC).replace(tzinfo=None)
    assert "429" in row.last_error
    clock.advance(6)
    assert await sender.send_due() == {}  # not due yet: nothing sent
    assert len(lms.score_posts) == 0
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.advance(seconds)

    assert await sender.drain(sleep=sleep) == {"sent": 1}
    assert slept == [pytest.approx(1.0)]
    assert len(lms.score_posts) == 1


async def test_retry_after_as_http_date(sessions, students, client, clock, lms):
    import email.utils

    when = email.utils.formatdate(clock() + 120, usegmt=True)
    lms.faults.append(Fault("scores", 503, {"Retry-After": when}))
    with sessions() as s:
        enqueue(s, grade("ann", 5.0))
    await Sender(sessions, students, client, clock=clock).send_due()
    (row,) = rows(sessions)
    wait = (row.next_attempt_at - dt.datetime.fromtimestamp(clock(), dt.UTC).replace(tzinfo=None)).total_seconds()
    assert 119 <= wait <= 120


async def test_503_backs_off_exponentially_then_gives_up_and_retry_button(sessions, students, client, clock, lms):
    lms.faults.append(Fault("scores", 503, times=3))
    with sessions() as s:
        enqueue(s, grade("ann", 5.0))
    sender = Sender(sessions, students, client, clock=clock, max_attempts=3, base_delay=10)
    waits = []
    for _ in range(2):
        assert await sender.send_due() == {"retry": 1}
        (row,) = rows(sessions)
        now = dt.datetime.fromtimestamp(clock(), dt.UTC).replace(tzinfo=None)
        waits.append((row.next_attempt_at - now).total_seconds())
        clock.advance(waits[-1])
    assert 9 <= waits[0] <= 11 and 18 <= waits[1] <= 22
    assert await sender.send_due() == {"failed": 1}
    (row,) = rows(sessions)
    assert row.status == "failed" and "gave up after 3 attempts" in row.last_error
    with sessions() as s:
        assert status_counts(s, "c1") == {"failed": 1}
        assert retry_failed(s, "c1") == 1
    assert await sender.send_due() == {"sent": 1}
    assert len(lms.score_posts) == 1


async def test_crash_after_send_before_record_leaves_one_current_result(sessions, students, client, clock, lms):
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
    first = Sender(sessions, students, client, clock=clock)

    def crash(row):
        raise SystemExit("killed after the LMS accepted the score")

    first.after_send = crash
    with pytest.raises(SystemExit):
        await first.send_due()
    (row,) = rows(sessions)
    assert row.status == "pending"  # the sent was never recorded
    restarted = Sender(sessions, students, client, clock=clock)
    assert await restarted.send_due() == {"sent": 1}
    assert len(lms.score_posts) == 2, "the score went out twice..."
    a, b = lms.score_posts
    assert a == b, "...identical, same timestamp (idempotent)"
    current = [v for k, v in lms.results.items() if k[2] == "sub-ann"]
    assert len(current) == 1 and current[0]["scoreGiven"] == 8.0
    assert len(lms.lineitems["ctx1"]) == 1, "no second line item either"


async def test_older_grade_retried_after_newer_never_replaces_it(sessions, students, client, clock, lms):
    lms.faults.append(Fault("scores", 503))
    older, newer = T0, T0 + dt.timedelta(minutes=5)
    with sessions() as s:
        enqueue(s, grade("ann", 3.0, at=older))
    sender = Sender(sessions, students, client, clock=clock)
    assert await sender.send_due() == {"retry": 1}  # the older grade waits for a retry...
    with sessions() as s:
        enqueue(s, grade("ann", 9.0, at=newer))  # ...when a regrade lands
    clock.advance(3600)
    assert await sender.drain(sleep=lambda _s: None) == {"sent": 1}
    assert [(r.score_given, r.status) for r in rows(sessions)] == [(3.0, "superseded"), (9.0, "sent")]
    # the older grade arriving again (a retried job), or one even older: recorded, never sent
    with sessions() as s:
        again = enqueue(s, grade("ann", 3.0, at=older))
        oldest = enqueue(s, grade("ann", 1.0, at=older - dt.timedelta(days=1)))
        assert again.status == "superseded" and oldest.status == "superseded"
    # a stuck older row (e.g. written by a crashed worker) is re-checked before it is sent
    with sessions() as s:
        s.add(ScoreRow(course_id="c1", assignment="ps1", student="ann", label="x", score_given=2.0,
                       score_maximum=10.0, produced_at=older + dt.timedelta(minutes=1), status="pending"))
        s.commit()
    assert await sender.drain(sleep=lambda _s: None) == {"superseded": 1}
    (result,) = lms.results.values()
    assert result["scoreGiven"] == 9.0
    assert len(lms.score_posts) == 1


async def test_fake_lms_itself_keeps_the_newer_result(sessions, students, client, lms):
    svc = students.for_student("c1", "ann")
    url = await client.ensure_lineitem(svc, label="ps1", score_maximum=10, resource_id="ps1")
    base = {"userId": "sub-ann", "scoreMaximum": 10, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded"}
    await client.post_score(svc, url, {**base, "scoreGiven": 9, "timestamp": "2026-11-20T10:05:00+00:00"})
    await client.post_score(svc, url, {**base, "scoreGiven": 3, "timestamp": "2026-11-20T10:00:00+00:00"})
    (result,) = lms.results.values()
    assert result["scoreGiven"] == 9


async def test_lineitem_url_on_another_host_is_refused(sessions, platform, lms, client, clock, http):
    evil = StaticServices([
        launch(platform, lms, "ann", lineitems_url="https://grades.evil.example/ctx1/lineitems"),
        launch(platform, lms, "bob", lineitems_url="https://127.0.0.2:1/ctx1/lineitems"),
        launch(platform, lms, "cy", lineitems_url=lms.lineitems_url("ctx1").replace("http:", "https:")),
    ])
    with sessions() as s:
        for who in ("ann", "bob", "cy"):
            enqueue(s, grade(who, 1.0))
    out = await Sender(sessions, evil, client, clock=clock).drain(sleep=lambda _s: None)
    assert out == {"failed": 3}
    assert all("refused" in r.last_error for r in rows(sessions))
    assert http.calls == [], "nothing was sent anywhere, not even a token request"
    assert lms.requests == []


async def test_created_lineitem_pointing_elsewhere_is_refused(sessions, students, client, clock, lms, http):
    from fakelms import ags

    real_post = ags.LineItemsHandler.post

    async def hostile_post(self, ctx):
        self.state.base_url, saved = "https://elsewhere.example", self.state.base_url
        try:
            await real_post(self, ctx)
        finally:
            self.state.base_url = saved

    ags.LineItemsHandler.post = hostile_post
    try:
        with sessions() as s:
            enqueue(s, grade("ann", 1.0))
        assert await Sender(sessions, students, client, clock=clock).drain(sleep=lambda _s: None) == {"failed": 1}
    finally:
        ags.LineItemsHandler.post = real_post
    assert not any("elsewhere" in url for _m, url in http.calls)
    assert lms.score_posts == []


@pytest.mark.parametrize("bad", [dict(score_given=-1.0), dict(score_given=math.nan), dict(score_maximum=0.0),
                                 dict(score_given=math.inf), dict(score_given=None),
                                 dict(grading_progress="Done"), dict(activity_progress="Finished")])
def test_invalid_scores_are_refused_before_sending(sessions, bad):
    g = grade("ann", 1.0)
    fields = {**g.__dict__, **bad}
    with sessions() as s, pytest.raises(InvalidScore):
        enqueue(s, Grade(**fields))
    assert rows(sessions) == []


async def test_student_without_launch_is_reported_not_sent(sessions, students, client, clock, lms):
    with sessions() as s:
        enqueue(s, grade("nobody", 1.0))
        enqueue(s, grade("ann", 1.0))
        enqueue(s, grade("ann", 1.0))  # the same grade twice: stored once
        enqueue(s, grade("bob", 1.0))
    no_lineitems = StaticServices([students.for_student("c1", "ann"),
                                   launch(students.for_student("c1", "ann").platform, lms, "bob", lineitems_url=None,
                                          lineitem_url=lms.lineitems_url("ctx1") + "/1")])
    out = await Sender(sessions, no_lineitems, client, clock=clock).drain(sleep=lambda _s: None)
    assert out == {"failed": 2, "sent": 1}
    nobody, _ann, bob = rows(sessions)
    assert "not launched from the LMS" in nobody.last_error
    assert "no line items URL" in bob.last_error, "a link's own column is never used for other assignments"
    assert len(rows(sessions)) == 3


async def test_deleted_lms_column_is_recreated(sessions, students, client, clock, lms):
    with sessions() as s:
        enqueue(s, grade("ann", 5.0))
    sender = Sender(sessions, students, client, clock=clock)
    assert await sender.drain(sleep=lambda _s: None) == {"sent": 1}
    lms.lineitems["ctx1"].clear()  # an instructor deleted the column in the LMS
    with sessions() as s:
        enqueue(s, grade("ann", 6.0, at=T0 + dt.timedelta(hours=1)))

    def sleep(seconds):
        clock.advance(seconds)

    assert await sender.drain(sleep=sleep) == {"retry": 1, "sent": 1}
    (item,) = lms.lineitems["ctx1"].values()
    assert item["resourceId"] == "ps1"
    assert [p["scoreGiven"] for p in lms.score_posts] == [5.0, 6.0]
