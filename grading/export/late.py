"""Late penalties per the course's LatePolicy, computed for all submissions at once.

Rules (documented in docs/instructors/grades.md):
- a submission is late when its timestamp is after the student's deadline plus `grace_minutes`;
- lateness counts in started days from the deadline (1 minute past the grace period = 1 day);
- each day costs `penalty_percent_per_day` percent of the points the submission earned;
- more than `max_late_days` days late scores zero;
- nbgrader's own stored penalty (its LateSubmissionPlugin) still applies: the larger one is used,
  never both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the policy model needs pydantic; an export without a course never loads it
    from coursehub.platform.courses import LatePolicy

DAY = 86_400.0


def seconds_late(timestamp: pd.Series, due: pd.Series) -> pd.Series:
    """Seconds after the deadline (0 if on time, no deadline or no submission)."""
    late = (timestamp - due).dt.total_seconds()
    return late.clip(lower=0).fillna(0.0)


def late_mask(late_seconds: pd.Series, policy: LatePolicy | None) -> pd.Series:
    """Which submissions count as late under `policy`: the one rule behind the penalties here and
    the dashboard's "late" (more than `grace_minutes` after the student's deadline)."""
    grace = policy.grace_minutes * 60.0 if policy is not None else 0.0
    return pd.Series(late_seconds.to_numpy(dtype=float) > grace, index=late_seconds.index)


def policy_penalty(raw_score: pd.Series, late_seconds: pd.Series, policy: LatePolicy | None) -> pd.Series:
    """Points taken off each submission's raw score under `policy`."""
    if policy is None:
        return pd.Series(0.0, index=raw_score.index)
    raw = raw_score.to_numpy(dtype=float)
    secs = late_seconds.to_numpy(dtype=float)
    late = late_mask(late_seconds, policy).to_numpy()
    days = np.ceil(secs / DAY)
    share = np.minimum(days * policy.penalty_percent_per_day / 100.0, 1.0)
    penalty = np.where(late, raw * share, 0.0)
    if policy.max_late_days is not None:
        penalty = np.where(late & (days > policy.max_late_days), raw, penalty)
    return pd.Series(np.maximum(penalty, 0.0), index=raw_score.index)
