"""The score outbox: grades are recorded first, sent to the LMS later, retried until they land.

Newest wins. A grade carries the time it was produced (the AGS `timestamp`):
- enqueueing a grade older than one already queued or sent records it as `superseded`, unsent;
- a newer grade supersedes older rows still waiting (pending or failed);
- the sender re-checks just before sending, so an older grade retried late never overwrites a newer one.
Idempotent. The same grade (same student, assignment and produced_at) is stored once. A crash after
the LMS accepted a score but before the row says `sent` resends the identical score with the identical
timestamp; AGS keeps one current result per user and line item and replaces it by timestamp,
so the LMS still holds one result with the same value (tests/grading/lms: crash test).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from .. import metrics
from ..clock import naive_utcnow as utcnow
from .guard import ForeignServiceURL
from .lineitems import LineItemBusy, Wanted, ensure_lineitem, forget
from .models import ScoreRow
from .records import LaunchServices
from .retry import next_delay
from .services import Deferred, LmsServiceError, ServiceClient

log = logging.getLogger("coursehub.grading.lms")

ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
LIVE = ("pending", "sending", "sent", "failed")
#: Rows a sender may take: waiting ones, and claims whose sender died (lease passed).
CLAIMABLE = ("pending", "sending")


class InvalidScore(ValueError):
    pass


@dataclass(frozen=True)
class Grade:
    """A grade as the grading side produces it."""

    course_id: str
    assignment: str
    student: str
    score_given: float | None
    score_maximum: float
    produced_at: dt.datetime
    label: str = ""
    activity_progress: str = "Completed"
    grading_progress: str = "FullyGraded"
    comment: str | None = None


def _naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def iso_timestamp(t: dt.datetime) -> str:
    """AGS timestamp: ISO 8601 with sub-second precision and an explicit UTC offset."""
    return _naive_utc(t).replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")


def validate(score_given: float | None, score_maximum: float, activity: str, grading: str,
             user_id: str | None = "x", comment: str | None = None) -> list[str]:
    """Problems that make a score unfit to send (empty list: fine)."""
    problems = []
    if not isinstance(score_maximum, (int, float)) or not math.isfinite(score_maximum) or score_maximum <= 0:
        problems.append(f"scoreMaximum must be a number above 0, got {score_maximum!r}")
    if score_given is not None and (not isinstance(score_given, (int, float)) or not math.isfinite(score_given)
                                    or score_given < 0):
        problems.append(f"scoreGiven must be a number of 0 or more, got {score_given!r}")
    if score_given is None and grading == "FullyGraded":
        problems.append("a FullyGraded score needs scoreGiven")
    if activity not in ACTIVITY:
        problems.append(f"activityProgress {activity!r} is not one of {sorted(ACTIVITY)}")
    if grading not in GRADING:
        problems.append(f"gradingProgress {grading!r} is not one of {sorted(GRADING)}")
    if not user_id or not isinstance(user_id, str):
        problems.append("userId is missing (the student never launched from the LMS)")
    if comment is not None and len(comment) > 10_000:
        problems.append("comment longer than 10,000 characters")
    return problems


def score_payload(row: ScoreRow, user_id: str) -> dict:
    body = {"userId": user_id, "scoreMaximum": row.score_maximum, "activityProgress": row.activity_progress,
            "gradingProgress": row.grading_progress, "timestamp": iso_timestamp(row.produced_at)}
    if row.score_given is not None:
        body["scoreGiven"] = row.score_given
    if row.comment:
        body["comment"] = row.comment
    return body


def _newer_exists(s: Session, row: ScoreRow) -> bool:
    return s.scalar(select(func.count()).select_from(ScoreRow).where(
        ScoreRow.course_id == row.course_id, ScoreRow.assignment == row.assignment,
        ScoreRow.student == row.student, ScoreRow.produced_at > row.produced_at,
        ScoreRow.status.in_(LIVE))) > 0


def enqueue(s: Session, grade: Grade) -> ScoreRow:
    """Record a grade for sending (commits). Returns the stored row (existing one if a duplicate)."""
    problems = validate(grade.score_given, grade.score_maximum, grade.activity_progress, grade.grading_progress,
                        comment=grade.comment)
    if problems:
        raise InvalidScore("; ".join(problems))
    produced = _naive_utc(grade.produced_at)
    key = (ScoreRow.course_id == grade.course_id, ScoreRow.assignment == grade.assignment,
           ScoreRow.student == grade.student)
    same = s.scalar(select(ScoreRow).where(*key, ScoreRow.produced_at == produced))
    if same is not None:
        return same
    row = ScoreRow(course_id=grade.course_id, assignment=grade.assignment, student=grade.student,
                   label=grade.label or grade.assignment, score_given=grade.score_given,
                   score_maximum=grade.score_maximum, activity_progress=grade.activity_progress,
                   grading_progress=grade.grading_progress, comment=grade.comment, produced_at=produced,
                   status="pending", attempts=0, next_attempt_at=utcnow(), created_at=utcnow())
    if _newer_exists(s, row):
        row.status, row.last_error = "superseded", "a newer grade was already recorded"
    else:
        s.execute(update(ScoreRow).where(*key, ScoreRow.produced_at < produced,
                                         ScoreRow.status.in_(("pending", "failed")))
                  .values(status="superseded", last_error="replaced by a newer grade"))
    s.add(row)
    try:
        s.commit()
    except IntegrityError:  # the same grade raced in
        s.rollback()
        return s.scalars(select(ScoreRow).where(*key, ScoreRow.produced_at == produced)).one()
    return row


def retry_failed(s: Session, course_id: str, ids: Iterable[int] | None = None) -> int:
    """The retry button: failed rows (all of the course, or `ids`) go back to pending now."""
    q = update(ScoreRow).where(ScoreRow.course_id == course_id, ScoreRow.status == "failed")
    if ids is not None:
        q = q.where(ScoreRow.id.in_(list(ids)))
    n = s.execute(q.values(status="pending", attempts=0, next_attempt_at=utcnow())).rowcount
    s.commit()
    return n


def status_counts(s: Session, course_id: str) -> dict[str, int]:
    rows = s.execute(select(ScoreRow.status, func.count()).where(ScoreRow.course_id == course_id)
                     .group_by(ScoreRow.status)).all()
    return {status: n for status, n in rows}


def failed_rows(s: Session, course_id: str, limit: int = 200) -> list[ScoreRow]:
    return list(s.scalars(select(ScoreRow).where(ScoreRow.course_id == course_id, ScoreRow.status == "failed")
                          .order_by(ScoreRow.id.desc()).limit(limit)))


#: What course.yaml says an assignment's line item is: (label, points), or None (use the score's).
LineItemSpec = Callable[[str, str], "tuple[str, float] | None"]


class ServicesSource(Protocol):
    """Where the LMS endpoints of a student's newest launch come from (see `sources.py`)."""

    def for_student(self, course_id: str, student: str) -> LaunchServices | None: ...


def claim(s: Session, row_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take row `row_id` for sending (status "sending" until `now + lease`), in one UPDATE: only if
    it is due and no other sender holds a live claim on the same (course, assignment, student),
    which is the LMS's (line item, user). Works across senders and processes; a sender that dies
    leaves a claim that lapses after `lease`. Commits; True when this caller holds the claim."""
    other = aliased(ScoreRow)
    busy = select(other.id).where(
        other.course_id == ScoreRow.course_id, other.assignment == ScoreRow.assignment,
        other.student == ScoreRow.student, other.status == "sending", other.next_attempt_at > now,
        other.id != ScoreRow.id).exists()
    n = s.execute(update(ScoreRow).where(
        ScoreRow.id == row_id, ScoreRow.status.in_(CLAIMABLE), ScoreRow.next_attempt_at <= now, ~busy,
    ).values(status="sending", next_attempt_at=now + lease).execution_options(synchronize_session=False)).rowcount
    s.commit()
    return n == 1


class Sender:
    """Sends due outbox rows. Each row is claimed first (`claim`), so the timer, "Sync now" and a
    second service process never post the same score at once; a platform's Retry-After holds
    every send through the client's gate (`ServiceClient.gate`) and the row's next attempt."""

    def __init__(self, sessions: sessionmaker[Session], source: ServicesSource, client: ServiceClient, *,
                 clock: Callable[[], float] = time.time, max_attempts: int = 8, base_delay: float = 2.0,
                 max_delay: float = 3600.0, tag: str = "coursehub", send_lease: float = 300.0,
                 lineitem_spec: LineItemSpec | None = None):
        self.sessions = sessions
        self.lineitem_spec = lineitem_spec
        self.source = source
        self.client = client
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.tag = tag
        self.send_lease = dt.timedelta(seconds=send_lease)
        #: Test hook: runs after the LMS accepted a score and before the row is marked sent.
        self.after_send: Callable[[ScoreRow], None] | None = None

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).replace(tzinfo=None)

    def next_due(self) -> dt.datetime | None:
        with self.sessions() as s:
            return s.scalar(select(func.min(ScoreRow.next_attempt_at)).where(ScoreRow.status.in_(CLAIMABLE)))

    async def send_due(self, limit: int = 500, pause: Callable[[], bool] | None = None) -> dict[str, int]:
        """Send every pending row whose time has come; returns counts by outcome. `pause()` is asked
        before each row: when it says so, the rest wait for the next round (a deadline started)."""
        outcomes: dict[str, int] = {}
        with self.sessions() as s:
            ids = list(s.scalars(select(ScoreRow.id).where(ScoreRow.status.in_(CLAIMABLE),
                                                           ScoreRow.next_attempt_at <= self._now())
                                 .order_by(ScoreRow.produced_at, ScoreRow.id).limit(limit)))
        for row_id in ids:
            if pause is not None and pause():
                break
            outcome = await self.send_one(row_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    async def drain(self, sleep: Callable[[float], object], max_rounds: int = 1000) -> dict[str, int]:
        """Send until nothing is pending, sleeping (with `sleep`) until the next row is due."""
        total: dict[str, int] = {}
        for _ in range(max_rounds):
            for k, v in (await self.send_due()).items():
                total[k] = total.get(k, 0) + v
            due = self.next_due()
            if due is None:
                break
            wait = (due - self._now()).total_seconds()
            if wait > 0:
                res = sleep(wait)
                if hasattr(res, "__await__"):
                    await res
        return total

    async def send_one(self, row_id: int) -> str:
        """Claim and send one row; returns (and counts) the outcome."""
        outcome = await self._send_one(row_id)
        metrics.SYNC_OUTCOME.labels(outcome if outcome in metrics.SYNC_OUTCOMES else "skipped").inc()
        return outcome

    async def _send_one(self, row_id: int) -> str:
        with self.sessions() as s:
            if not claim(s, row_id, self._now(), self.send_lease):
                row = s.get(ScoreRow, row_id)
                return "busy" if row is not None and row.status in CLAIMABLE else "skipped"
        with self.sessions() as s:
            row = s.get(ScoreRow, row_id)
            if row is None or row.status != "sending":
                return "skipped"
            try:
                return await self._send_claimed(s, row)
            except BaseException:
                s.rollback()  # unexpected: give the row back to the queue instead of holding it
                s.execute(update(ScoreRow).where(ScoreRow.id == row_id, ScoreRow.status == "sending")
                          .values(status="pending", next_attempt_at=self._now()))
                s.commit()
                raise

    async def _send_claimed(self, s: Session, row: ScoreRow) -> str:
        if _newer_exists(s, row):
            return self._finish(s, row, "superseded", "a newer grade exists")
        svc = self.source.for_student(row.course_id, row.student)
        if svc is None:
            return self._finish(s, row, "failed", "no LMS grade service recorded for this student in this "
                                "course (they have not launched from the LMS yet)")
        if not svc.lineitems_url:
            return self._finish(s, row, "failed", "the LMS gave this course no line items URL (AGS "
                                "lineitem scope), so coursehub cannot find or create a column per assignment")
        problems = validate(row.score_given, row.score_maximum, row.activity_progress, row.grading_progress,
                            svc.lti_user_id, row.comment)
        if problems:
            return self._finish(s, row, "invalid", "; ".join(problems))
        try:
            lineitem = row.lineitem_url or await self._lineitem(s, row, svc)
            row.lineitem_url, row.lti_user_id = lineitem, svc.lti_user_id
            await self.client.post_score(svc, lineitem, score_payload(row, svc.lti_user_id))
        except ForeignServiceURL as e:
            return self._finish(s, row, "failed", str(e))
        except LineItemBusy as e:  # another sender is creating the column: use it shortly
            row.status, row.last_error = "pending", str(e)
            row.next_attempt_at = self._now() + dt.timedelta(seconds=self.base_delay)
            s.commit()
            return "deferred"
        except Deferred as e:  # nothing was sent: wait for the platform's time, no attempt used
            row.status, row.last_error = "pending", str(e)
            row.next_attempt_at = self._now() + dt.timedelta(seconds=e.retry_after or self.base_delay)
            s.commit()
            return "deferred"
        except LmsServiceError as e:
            if e.status == 404 and row.lineitem_url and row.attempts + 1 < self.max_attempts:
                self._forget_lineitem(s, row, svc)  # the LMS column was deleted: find or create anew
                e = LmsServiceError(f"{e} (the LMS column is gone; a new one will be made)", 503)
            return self._retry_or_fail(s, row, e)
        if self.after_send:
            self.after_send(row)
        row.sent_at = self._now()
        return self._finish(s, row, "sent", None)

    def wanted(self, row: ScoreRow) -> Wanted:
        """The line item for `row`'s assignment: course.yaml's title and points, else the score's."""
        spec = self.lineitem_spec(row.course_id, row.assignment) if self.lineitem_spec else None
        label, points = spec if spec else (row.label or row.assignment, row.score_maximum)
        return Wanted(row.assignment, label, points)

    async def _lineitem(self, s: Session, row: ScoreRow, svc: LaunchServices) -> str:
        return await ensure_lineitem(s, self.client, svc, self.wanted(row), course_id=row.course_id,
                                     now=self._now(), tag=self.tag, lease=self.send_lease)

    def _forget_lineitem(self, s: Session, row: ScoreRow, svc: LaunchServices) -> None:
        if svc.lineitems_url and row.lineitem_url:
            forget(s, svc, row.assignment, row.lineitem_url)
            s.execute(update(ScoreRow).where(ScoreRow.lineitem_url == row.lineitem_url,
                                             ScoreRow.status == "pending").values(lineitem_url=None))
        row.lineitem_url = None

    def _retry_or_fail(self, s: Session, row: ScoreRow, e: LmsServiceError) -> str:
        row.attempts += 1
        if not e.retryable:
            return self._finish(s, row, "failed", str(e))
        if row.attempts >= self.max_attempts:
            return self._finish(s, row, "failed", f"gave up after {row.attempts} attempts: {e}")
        delay = next_delay(row.attempts, e.retry_after, base=self.base_delay, cap=self.max_delay)
        row.status = "pending"
        row.next_attempt_at = self._now() + dt.timedelta(seconds=delay)
        row.last_error = f"{e} (retry in {delay:.0f} s)"
        s.commit()
        log.info("score %s for %s/%s: retry %d in %.1f s", row.id, row.course_id, row.assignment,
                 row.attempts, delay)
        return "retry"

    def _finish(self, s: Session, row: ScoreRow, status: str, error: str | None) -> str:
        row.status, row.last_error = status, error
        s.commit()
        if status in ("failed", "invalid"):
            log.warning("score %s for %s/%s %s: %s", row.id, row.course_id, row.assignment, status, error)
        return status


def pending_or_failed_keys(s: Session, course_id: str) -> set[tuple[str, str]]:
    rows = s.execute(select(ScoreRow.assignment, ScoreRow.student).where(
        ScoreRow.course_id == course_id, ScoreRow.status.in_(("pending", "sending", "failed")))).all()
    return {(a, b) for a, b in rows}


def last_scores(s: Session, course_id: str) -> dict[tuple[str, str], tuple[float | None, float]]:
    """The newest live score per (assignment, student): what the LMS has or will get."""
    newest = (select(ScoreRow.assignment, ScoreRow.student, func.max(ScoreRow.produced_at).label("t"))
              .where(ScoreRow.course_id == course_id, ScoreRow.status.in_(LIVE))
              .group_by(ScoreRow.assignment, ScoreRow.student).subquery())
    rows = s.execute(select(ScoreRow.assignment, ScoreRow.student, ScoreRow.score_given, ScoreRow.score_maximum)
                     .join(newest, and_(ScoreRow.assignment == newest.c.assignment,
                                        ScoreRow.student == newest.c.student, ScoreRow.produced_at == newest.c.t))
                     .where(ScoreRow.course_id == course_id)).all()
    return {(a, st): (g, m) for a, st, g, m in rows}


def last_states(s: Session, course_id: str) -> dict[tuple[str, str], tuple[float | None, float, str]]:
    """The newest live (score, maximum, gradingProgress) per (assignment, student)."""
    newest = (select(ScoreRow.assignment, ScoreRow.student, func.max(ScoreRow.produced_at).label("t"))
              .where(ScoreRow.course_id == course_id, ScoreRow.status.in_(LIVE))
              .group_by(ScoreRow.assignment, ScoreRow.student).subquery())
    rows = s.execute(select(ScoreRow.assignment, ScoreRow.student, ScoreRow.score_given, ScoreRow.score_maximum,
                            ScoreRow.grading_progress)
                     .join(newest, and_(ScoreRow.assignment == newest.c.assignment,
                                        ScoreRow.student == newest.c.student, ScoreRow.produced_at == newest.c.t))
                     .where(ScoreRow.course_id == course_id)).all()
    return {(a, st): (g, m, p) for a, st, g, m, p in rows}
