"""The grading side's Prometheus metrics, module-level like `jupyterhub/metrics.py`.

A leaf module (imports nothing from coursehub) so the service, the queue worker and the LMS sender
can all record into it without import circles. Every label value is created up front, so a series
exists (at 0) before its first event and an alert on it never sees "no data". The service serves
`REGISTRY` on `/metrics` (hub token with `read:metrics`); docs/operators/monitoring.md lists them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

QUEUE_STATES = ("queued", "leased", "applying", "done", "dead", "superseded")
JOB_OUTCOMES = ("graded", "failed")
KILL_REASONS = ("timeout", "memory", "pids", "output", "cleanup", "other")
SYNC_OUTCOMES = ("sent", "retry", "deferred", "failed", "invalid", "superseded", "skipped", "busy")
RECEIVED_KINDS = ("on_time", "late", "duplicate")
REFUSED_REASONS = ("too_large", "invalid", "not_allowed", "rate_limited", "store_full", "database_busy",
                   "other")
DB_COMPONENTS = ("service", "worker")
ROSTER_OUTCOMES = ("ok", "incomplete", "failed")
ROSTER_CHANGES = ("added", "removed")

QUEUE_DEPTH = Gauge("coursehub_grading_queue_jobs", "Autograde jobs in the queue by state (read at scrape)",
                    ["state"], registry=REGISTRY)
JOB_DURATION = Histogram(
    "coursehub_grading_job_duration_seconds", "Time a worker spent grading one job, by outcome", ["outcome"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, float("inf")), registry=REGISTRY)
SANDBOX_KILLS = Counter("coursehub_grading_sandbox_kills_total",
                        "Submissions the sandbox stopped, by reason", ["reason"], registry=REGISTRY)
SYNC_OUTCOME = Counter("coursehub_grading_lms_sync_total", "LMS grade-sync attempts by outcome", ["outcome"],
                       registry=REGISTRY)
SUBMISSIONS_RECEIVED = Counter("coursehub_grading_submissions_received_total",
                               "Submissions stored (or acknowledged as a duplicate), by kind", ["kind"],
                               registry=REGISTRY)
SUBMISSIONS_REFUSED = Counter("coursehub_grading_submissions_refused_total",
                              "Submissions refused, by reason", ["reason"], registry=REGISTRY)
STORE_FULL = Gauge("coursehub_grading_store_full",
                   "1 while the submission store is full (the last write failed with no space), else 0",
                   registry=REGISTRY)
DB_BUSY = Counter("coursehub_grading_db_busy_total",
                  "Times the grading database was locked or unreachable (service: answered 503; worker: "
                  "waited and retried)", ["component"], registry=REGISTRY)
ROSTER_SYNCS = Counter("coursehub_grading_lms_roster_syncs_total",
                       "NRPS roster syncs of one LMS course, by outcome (incomplete: a page was missing, "
                       "nobody was taken as gone)", ["outcome"], registry=REGISTRY)
ROSTER_MEMBERS = Counter("coursehub_grading_lms_roster_members_total",
                         "People roster syncs changed: added (joined the course, or came back) or "
                         "removed from a course group (left, or their role changed)", ["change"], registry=REGISTRY)

for _state in QUEUE_STATES:
    QUEUE_DEPTH.labels(_state)
for _outcome in JOB_OUTCOMES:
    JOB_DURATION.labels(_outcome)
for _reason in KILL_REASONS:
    SANDBOX_KILLS.labels(_reason)
for _outcome in SYNC_OUTCOMES:
    SYNC_OUTCOME.labels(_outcome)
for _kind in RECEIVED_KINDS:
    SUBMISSIONS_RECEIVED.labels(_kind)
for _reason in REFUSED_REASONS:
    SUBMISSIONS_REFUSED.labels(_reason)
for _component in DB_COMPONENTS:
    DB_BUSY.labels(_component)
for _outcome in ROSTER_OUTCOMES:
    ROSTER_SYNCS.labels(_outcome)
for _change in ROSTER_CHANGES:
    ROSTER_MEMBERS.labels(_change)
STORE_FULL.set(0)


def refused_reason(status: int) -> str:
    """The `reason` label for a refused submission's HTTP status."""
    return {413: "too_large", 422: "invalid", 400: "invalid", 403: "not_allowed", 404: "not_allowed",
            409: "invalid", 429: "rate_limited", 507: "store_full", 503: "database_busy"}.get(status, "other")


def exposition() -> bytes:
    """The text exposition of every grading metric."""
    return generate_latest(REGISTRY)
