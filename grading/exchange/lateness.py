"""What a student reads about deadlines: the warning before a late submit and the receipt after.

Times come from the grading service (its clock decides on-time or late), never the local clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class LateNotice:
    text: str
    seconds_late: int


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def duration(seconds: float) -> str:
    """'40 min', '3 h', '2 days' (rounded down, at least 1 min)."""
    minutes = max(1, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} days"


def policy_text(deadline: dict) -> str:
    """'−10 %/day' (with the cut-off when there is one), or 'no penalty'."""
    pct = float(deadline.get("penalty_percent_per_day") or 0)
    if pct <= 0:
        return "no penalty"
    text = f"\u2212{pct:g} %/day"
    if deadline.get("max_late_days") is not None:
        text += f", zero after {deadline['max_late_days']} days"
    return text


def late_notice(deadline: dict | None) -> LateNotice | None:
    """The warning before submitting, if the deadline (plus grace) has passed on the service's clock."""
    if not deadline:
        return None
    due, now = _parse(deadline.get("due_at")), _parse(deadline.get("now"))
    if due is None or now is None:
        return None
    grace = dt.timedelta(minutes=int(deadline.get("grace_minutes") or 0))
    if now <= due + grace:
        return None
    late = (now - due).total_seconds()
    return LateNotice(f"The deadline passed {duration(late)} ago; this will be late ({policy_text(deadline)}).",
                      int(late))


def shown_time(timestamp: str) -> str:
    """nbgrader's submission timestamp ('2026-12-04 15:22:39.123456 UTC') as people read it:
    '2026-12-04 15:22:39 UTC'. Anything else is shown as it came."""
    text = timestamp.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return timestamp
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def receipt(info: dict) -> str:
    """One sentence after a submit, from the service's answer: its time and on-time or late."""
    at = _parse(info.get("submitted_at"))
    when = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else shown_time(info.get("timestamp", "?"))
    text = f"Submitted {info.get('assignment_id', '')} at {when} (grading service time): "
    if info.get("late"):
        return text + f"late by {duration(info.get('seconds_late') or 0)}."
    if info.get("due_at"):
        return text + "on time."
    return text + "received (this assignment has no deadline)."
