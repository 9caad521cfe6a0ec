"""When to try again: Retry-After first (seconds or an HTTP date), else exponential backoff."""

from __future__ import annotations

import email.utils
import random

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
    """base * 2**(attempt-1), capped, with +-10 % jitter so retries of many rows spread out."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    r = (rng or random).uniform(-jitter, jitter)
    return max(0.0, delay * (1 + r))


def next_delay(attempt: int, retry_after: float | None, *, base: float = 2.0, cap: float = 3600.0) -> float:
    """The platform's Retry-After when it sent one (never less), else our backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), max(cap, retry_after))
    return backoff_seconds(attempt, base, cap)
