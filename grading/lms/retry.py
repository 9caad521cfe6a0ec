"""When to try again: Retry-After first (seconds or an HTTP date), else exponential backoff.

`backoff_seconds` is the grading side's one backoff rule: the LMS outbox (with jitter), the job
queue's retries and the worker's waits for a locked database (without) all use it. The exchange
client's HTTP retries are urllib3's `Retry` (grading/exchange/base.py)."""

from __future__ import annotations

import email.utils
import random
import threading

RETRYABLE = {408, 425, 429, 500, 502, 503, 504, 599}


def retry_after_seconds(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def backoff_seconds(attempt: int, base: float = 2.0, cap: float = 3600.0, jitter: float = 0.1,
                    rng: random.Random | None = None) -> float:
    """base * 2**(attempt-1) for attempt 1, 2, ..., capped, with +-`jitter` (10 %) so that retries
    of many rows spread out; `jitter=0` gives the exact doubling."""
    delay = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))  # no float overflow after many tries
    if not jitter:
        return delay
    r = (rng or random).uniform(-jitter, jitter)
    return max(0.0, delay * (1 + r))


def next_delay(attempt: int, retry_after: float | None, *, base: float = 2.0, cap: float = 3600.0) -> float:
    """The platform's Retry-After when it sent one (never less), else our backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), max(cap, retry_after))
    return backoff_seconds(attempt, base, cap)


class RetryGate:
    """When each LMS platform said we may call it again (its latest Retry-After), so that every
    path that sends (timer, "Sync now", the retry button, line items, rosters) waits alike.
    Times are on the caller's clock (seconds since the epoch); one gate per service client."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, key: str, until: float) -> None:
        with self._lock:
            self._until[key] = max(self._until.get(key, 0.0), until)

    def remaining(self, key: str, now: float) -> float:
        """Seconds still to wait before calling `key` (0 when free)."""
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return 0.0
            if until <= now:
                del self._until[key]
                return 0.0
            return until - now
