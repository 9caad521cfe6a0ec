"""One sender per (platform, line item, user) at a time, and the LMS's Retry-After on every path.

"Sync now" pressed while the timer is sending, a double click during a 429 `Retry-After: 40`,
and a second service process all go through the same claim in the outbox table; every call to a
platform that asked us to wait is held by the client's gate. Time is the fake clock, never sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

from fakelms.ags import Fault
from sqlalchemy import select

from coursehub.grading import metrics
from coursehub.grading.lms.models import ScoreRow
from coursehub.grading.lms.outbox import Grade, Sender, enqueue, retry_failed
from coursehub.grading.lms.services import Deferred, ServiceClient

from .conftest import launch

T0 = dt.datetime(2026, 11, 20, 10, 0, 0, 123456)


def grade(student: str, score: float, assignment: str = "ps1", at: dt.datetime = T0) -> Grade:
    return Grade(course_id="c1", assignment=assignment, student=student, score_given=score, score_maximum=10.0,
                 produced_at=at)


def score_posts(http) -> int:
    """Score POSTs that went out on the wire (accepted or not)."""
    return sum(1 for method, url in http.calls if method == "POST" and url.split("?")[0].endswith("/scores"))


def rows(sessions) -> list[ScoreRow]:
    with sessions() as s:
        return list(s.scalars(select(ScoreRow).order_by(ScoreRow.id)))


def second_client(client: ServiceClient) -> ServiceClient:
    """Another sender's own client (what "Sync now" built before): same wire, its own gate."""
    return ServiceClient(client.tokens, client.http)


async def test_sync_now_while_the_timer_sends_posts_once(sessions, students, client, clock, lms, http):
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
        enqueue(s, grade("bob", 6.0))
    timer = Sender(sessions, students, client, clock=clock)
    sync_now = Sender(sessions, students, second_client(client), clock=clock)
    outs = await asyncio.gather(timer.send_due(), sync_now.send_due(), sync_now.send_due())
    assert sum(o.get("sent", 0) for o in outs) == 2
    assert score_posts(http) == 2  # each score once, whoever sent it
    assert [r.status for r in rows(sessions)] == ["sent", "sent"]
    assert len(lms.score_posts) == 2


async def test_double_click_during_429_retry_after_40_waits_40_seconds(sessions, students, client, clock, lms,
                                                                       http):
    lms.faults.append(Fault("scores", 429, {"Retry-After": "40"}))
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
    timer = Sender(sessions, students, client, clock=clock)
    sync_now = Sender(sessions, students, second_client(client), clock=clock)
    # the timer's send and two clicks land together: one request goes out, and it gets the 429
    await asyncio.gather(timer.send_due(), sync_now.send_due(), sync_now.send_due())
    assert score_posts(http) == 1
    elapsed = 0.0
    for seconds in (0, 1, 20, 39.5):  # clicks (and timer ticks) before the 40 s are up
        clock.advance(seconds - elapsed)
        elapsed = seconds
        await asyncio.gather(sync_now.send_due(), timer.send_due(), sync_now.send_one(rows(sessions)[0].id))
        assert score_posts(http) == 1, f"posted again {seconds} s after Retry-After: 40"
    clock.advance(40 - elapsed)
    outs = await asyncio.gather(sync_now.send_due(), timer.send_due())
    assert sum(o.get("sent", 0) for o in outs) == 1
    assert score_posts(http) == 2
    (row,) = rows(sessions)
    assert row.status == "sent" and row.attempts == 1


async def test_retry_after_holds_every_path_to_that_lms(sessions, students, client, clock, lms, http, platform):
    """After one 429 Retry-After: 40, nothing goes to that LMS for 40 s: other students' scores,
    a new assignment's line item, the retry button, a roster read. Then all of it goes."""
    lms.faults.append(Fault("scores", 429, {"Retry-After": "40"}))
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
    sender = Sender(sessions, students, client, clock=clock)
    assert await sender.send_due() == {"retry": 1}
    wire = len(http.calls)
    with sessions() as s:
        enqueue(s, grade("bob", 5.0))  # another student, same line item
        enqueue(s, grade("cy", 4.0, assignment="ps9"))  # needs a new line item
        failed = ScoreRow(course_id="c1", assignment="ps1", student="dee", label="ps1", score_given=1.0,
                          score_maximum=10.0, produced_at=T0, status="failed", attempts=8,
                          next_attempt_at=T0, created_at=T0)
        s.add(failed)
        s.commit()
        assert retry_failed(s, "c1") == 1  # the retry button
    out = await sender.send_due()
    assert out == {"deferred": 3}
    roster = launch(platform, lms, "prof")
    try:
        await client.members(roster)
        raise AssertionError("the roster read went out during Retry-After")
    except Deferred as e:
        assert 0 < e.retry_after <= 40
    assert len(http.calls) == wire  # not one request on the wire
    assert {r.student: r.attempts for r in rows(sessions)}["bob"] == 0  # waiting is not an attempt
    clock.advance(40)
    out = await sender.drain(sleep=lambda s: clock.advance(s))
    assert out == {"sent": 4}
    assert {r.status for r in rows(sessions)} == {"sent"}


async def test_a_second_process_does_not_send_a_claimed_row(sessions, students, client, clock, lms, http):
    """A sender that died mid-send leaves a claim: nobody resends it before the claim lapses."""
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
    from coursehub.grading.lms.outbox import claim

    now = dt.datetime.fromtimestamp(clock(), dt.UTC).replace(tzinfo=None)
    with sessions() as s:
        (row,) = s.scalars(select(ScoreRow)).all()
        assert claim(s, row.id, now, dt.timedelta(seconds=300))  # the dead sender's claim
        assert not claim(s, row.id, now, dt.timedelta(seconds=300))  # nobody else gets it
    other = Sender(sessions, students, second_client(client), clock=clock)
    assert await other.send_due() == {}
    assert await other.send_one(row.id) == "busy"
    clock.advance(299)
    assert await other.send_due() == {} and score_posts(http) == 0
    clock.advance(2)  # the claim lapsed: the row is sent (identical score, idempotent in AGS)
    assert await other.send_due() == {"sent": 1}
    assert score_posts(http) == 1


async def test_a_newer_grade_waits_for_the_send_in_flight_of_the_same_user(sessions, students, client, clock,
                                                                          lms, http):
    """Two rows for one (line item, user): never two senders at once, and the newest wins."""
    with sessions() as s:
        old = enqueue(s, grade("ann", 3.0))
    now = dt.datetime.fromtimestamp(clock(), dt.UTC).replace(tzinfo=None)
    from coursehub.grading.lms.outbox import claim

    with sessions() as s:
        assert claim(s, old.id, now, dt.timedelta(seconds=300))  # being sent by someone
        new = enqueue(s, grade("ann", 9.0, at=T0 + dt.timedelta(minutes=1)))
        assert not claim(s, new.id, now, dt.timedelta(seconds=300))  # same user and line item: waits
    sender = Sender(sessions, students, client, clock=clock)
    assert await sender.send_due() == {"busy": 1}
    assert score_posts(http) == 0


async def test_sync_outcomes_are_counted(sessions, students, client, clock, lms):
    sent = metrics.SYNC_OUTCOME.labels("sent")._value.get()
    with sessions() as s:
        enqueue(s, grade("ann", 8.0))
    await Sender(sessions, students, client, clock=clock).send_due()
    assert metrics.SYNC_OUTCOME.labels("sent")._value.get() == sent + 1


def test_timer_and_sync_now_share_one_sender(tmp_path, monkeypatch):
    from coursehub.grading.lms import runtime

    settings = SimpleNamespace(grading_db_url=lambda: f"sqlite:///{tmp_path / 'g.sqlite'}")
    built = []
    monkeypatch.setattr(runtime, "make_sender", lambda s: built.append(object()) or built[-1])
    monkeypatch.setattr(runtime, "_senders", {})
    first = runtime.shared_sender(settings)
    assert runtime.shared_sender(settings) is first and len(built) == 1


def test_claim_on_postgresql(pg_url):
    """The claim is one UPDATE with a correlated NOT EXISTS: the same on PostgreSQL."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from coursehub.grading.lms.models import Base
    from coursehub.grading.lms.outbox import claim

    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    now = dt.datetime(2030, 1, 1)
    lease = dt.timedelta(seconds=300)
    with sessions() as s:
        old = enqueue(s, grade("ann", 1.0))
        new = enqueue(s, grade("ann", 2.0, at=T0 + dt.timedelta(minutes=1)))
        other = enqueue(s, grade("bob", 2.0))
        assert claim(s, old.id, now, lease) is False  # superseded by the newer grade: not pending
        assert claim(s, new.id, now, lease) and not claim(s, new.id, now, lease)
        assert claim(s, other.id, now, lease)  # another user: independent
        assert claim(s, new.id, now + lease + dt.timedelta(seconds=1), lease)  # lapsed claim: taken over
    engine.dispose()
