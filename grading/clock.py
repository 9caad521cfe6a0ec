"""The grading side's clock: one definition of "now" for every table and timer.

The exchange's tables store aware UTC (`models.UTCDateTime` strips and restores the zone); the
queue's and the LMS sync's tables keep naive UTC in plain `DateTime` columns. Both come from
`utcnow`, so they can never disagree about the time or the zone.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def naive_utcnow() -> dt.datetime:
    """Now in UTC without a zone (microseconds kept): what the queue and LMS time columns hold."""
    return utcnow().replace(tzinfo=None)
