"""One LMS line item per assignment and LMS context, never two.

AGS has no create-if-absent and most LMSes send no ETag, so two senders (the timer, "Sync now", a
second service process) that both list, find nothing and POST would make two columns. Before any
POST the caller inserts the `lms_lineitems` row of (issuer, line items URL, assignment) with status
"claimed": the primary key lets exactly one insert win. The winner re-lists (a crash after an earlier
POST may have left the item there), creates only if it is still missing, and stores the URL; the
others defer (`LineItemBusy`) and use the stored URL on their next attempt. A claim whose holder
died lapses at `claimed_until` and can be taken over.

The line item carries the assignment's title and points from course.yaml; when they change the
item is updated in place (PUT), so the column keeps its grades.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .guard import check_service_url
from .models import LineItemRow
from .records import LaunchServices
from .services import Deferred, LmsServiceError, ServiceClient

log = logging.getLogger("coursehub.grading.lms")
#: (line item, label, maximum) updates an LMS refused in this process: not tried again on every send.
_refused: set[tuple] = set()


class LineItemBusy(RuntimeError):
    """Another sender is creating this line item right now: try again shortly (nothing was sent)."""


@dataclass(frozen=True)
class Wanted:
    """What the line item of an assignment should say."""

    assignment: str
    label: str
    score_maximum: float


#: Senders of one process wait for each other here; the table's claim covers other processes.
_locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _local_lock(key: tuple[str, str, str]) -> asyncio.Lock:
    k = (id(asyncio.get_running_loop()), *key)
    lock = _locks.get(k)
    if lock is None:
        lock = _locks[k] = asyncio.Lock()
    return lock


def _key(svc: LaunchServices, assignment: str) -> tuple[str, str, str]:
    assert svc.lineitems_url
    return (svc.platform.issuer, svc.lineitems_url, assignment)


def _claim(s: Session, svc: LaunchServices, want: Wanted, course_id: str, now: dt.datetime,
           lease: dt.timedelta) -> LineItemRow | None:
    """The row if it is ready; else take the claim (insert, or take over a lapsed one) or raise busy."""
    key = _key(svc, want.assignment)
    row = s.get(LineItemRow, key, populate_existing=True)  # another sender may have just stored it
    if row is not None and row.status == "ready" and row.lineitem_url:
        return row
    if row is None:
        s.add(LineItemRow(issuer=key[0], lineitems_url=key[1], assignment=key[2], course_id=course_id,
                          lineitem_url=None, status="claimed", claimed_until=now + lease, label=want.label,
                          score_maximum=want.score_maximum, updated_at=now))
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            raise LineItemBusy(f"line item of {want.assignment} is being created by another sender") from None
        return None
    taken = s.execute(update(LineItemRow).where(
        LineItemRow.issuer == key[0], LineItemRow.lineitems_url == key[1], LineItemRow.assignment == key[2],
        LineItemRow.status == "claimed", LineItemRow.claimed_until <= now,
    ).values(claimed_until=now + lease, updated_at=now).execution_options(synchronize_session=False)).rowcount
    s.commit()
    if taken != 1:
        raise LineItemBusy(f"line item of {want.assignment} is being created by another sender")
    return None


async def ensure_lineitem(s: Session, client: ServiceClient, svc: LaunchServices, want: Wanted, *,
                          course_id: str, now: dt.datetime, tag: str | None = "coursehub",
                          lease: dt.timedelta = dt.timedelta(minutes=5), strict: bool = False) -> str:
    """The URL of `want`'s line item in `svc`'s context: found, created once, or updated (PUT).
    A refused update is logged and the item used as it is, unless `strict` (then it raises)."""
    async with _local_lock(_key(svc, want.assignment)):
        return await _ensure(s, client, svc, want, course_id=course_id, now=now, tag=tag, lease=lease,
                             strict=strict)


async def _ensure(s: Session, client: ServiceClient, svc: LaunchServices, want: Wanted, *, course_id: str,
                  now: dt.datetime, tag: str | None, lease: dt.timedelta, strict: bool) -> str:
    row = _claim(s, svc, want, course_id, now, lease)
    if row is None:  # we hold the claim: re-list, create only if still missing
        key = _key(svc, want.assignment)
        try:
            item = await client.find_lineitem(svc, want.assignment, tag)
            if item is None:
                item = await client.create_lineitem(svc, label=want.label, score_maximum=want.score_maximum,
                                                    resource_id=want.assignment, tag=tag)
            url = check_service_url(str(item.get("id", "")), svc.platform)
            label, maximum = str(item.get("label", "")), item.get("scoreMaximum")
        except BaseException:
            s.rollback()
            s.execute(update(LineItemRow).where(
                LineItemRow.issuer == key[0], LineItemRow.lineitems_url == key[1],
                LineItemRow.assignment == key[2], LineItemRow.status == "claimed",
            ).values(claimed_until=now))  # let the next attempt (anyone's) take it at once
            s.commit()
            raise
        row = s.get(LineItemRow, key)
        row.lineitem_url, row.status, row.claimed_until = url, "ready", None
        row.label, row.score_maximum, row.updated_at = label, maximum, now
        s.commit()
    if row.label != want.label or row.score_maximum != want.score_maximum:
        refusal = (row.lineitem_url, want.label, want.score_maximum)
        if strict or refusal not in _refused:
            try:
                await client.update_lineitem(svc, row.lineitem_url, label=want.label,
                                             score_maximum=want.score_maximum, resource_id=want.assignment, tag=tag)
            except Deferred:
                raise
            except LmsServiceError as e:
                # an LMS that will not change its column must not stop the scores going into it
                _refused.add(refusal)
                log.warning("the LMS refused to update the line item of %s: %s", want.assignment, e)
                if strict:
                    raise
                return row.lineitem_url
            row.label, row.score_maximum, row.updated_at = want.label, want.score_maximum, now
            s.commit()
    return row.lineitem_url


def forget(s: Session, svc: LaunchServices, assignment: str, lineitem_url: str) -> None:
    """The LMS says the line item is gone (404): drop our record so the next send finds or makes one."""
    if not svc.lineitems_url:
        return
    row = s.get(LineItemRow, _key(svc, assignment))
    if row is not None and row.lineitem_url == lineitem_url:
        s.delete(row)
        s.commit()


async def sync_lineitems(s: Session, client: ServiceClient, svc: LaunchServices, wanted: list[Wanted], *,
                         course_id: str, now: dt.datetime, tag: str | None = "coursehub") -> dict[str, str]:
    """Every assignment's line item in one context (created or updated); {assignment: outcome}."""
    out: dict[str, str] = {}
    for want in wanted:
        try:
            await ensure_lineitem(s, client, svc, want, course_id=course_id, now=now, tag=tag, strict=True)
            out[want.assignment] = "ok"
        except LineItemBusy:
            out[want.assignment] = "busy"
        except Deferred:
            raise  # the LMS asked us to wait: so do all the others
        except LmsServiceError as e:
            out[want.assignment] = f"failed: {e}"[:300]
    return out
