"""One audit line and one metric per launch outcome.

Lines carry ids (platform, issuer, client id, deployment, key id, hub user), never tokens, names or
emails, so they are safe at INFO. The counter shows up on the hub's /hub/metrics.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

LAUNCHES = Counter(
    "coursehub_lti_launches", "LTI 1.3 launches handled by the hub, by outcome and reason", ["outcome", "reason"]
)


def audit(log: logging.Logger | logging.LoggerAdapter, outcome: str, reason: str, **ids: object) -> None:
    LAUNCHES.labels(outcome=outcome, reason=reason).inc()
    fields = " ".join(f"{k}={_clean(v)}" for k, v in ids.items() if v not in (None, ""))
    level = logging.INFO if outcome == "accepted" else logging.WARNING
    log.log(level, "LTI audit: outcome=%s reason=%s %s", outcome, reason, fields)


def _clean(value: object) -> str:
    text = str(value).replace("\n", " ").replace(" ", "_")
    return repr(text[:200]) if any(c in text for c in "=\"'") else text[:200]
