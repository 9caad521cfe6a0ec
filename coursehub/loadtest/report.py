"""The figures a load test ends with: latency percentiles, failures by reason, and (for a deadline)
lost and duplicated submissions as read back from the grading service."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """One person's run through a scenario."""

    ok: bool
    seconds: float | None = None  # from the scheduled arrival to the end of the measured operation
    reason: str = ""              # why it failed ('' when ok)
    stages: dict[str, float] = field(default_factory=dict)
    student: str | None = None    # deadline: whose submission
    upload_id: str | None = None  # deadline: the upload id every retry reused
    ack_id: int | None = None     # deadline: the submission id the service acknowledged
    attempts: int = 0
    done_at: float | None = None  # when it ended, seconds after the run's start (for the throughput)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Iterable[float]) -> dict[str, float | None]:
    values = list(values)
    out = {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
           "min": min(values, default=None), "max": max(values, default=None)}
    return {k: None if v is None else round(v, 4) for k, v in out.items()}


def account(outcomes: list[Outcome], stored: list[dict]) -> dict:
    """Lost: acknowledged submissions the service does not have. Duplicated: rows beyond one per
    upload a student made (a retry with the same upload id must not store twice). Stored without
    acknowledgement: uploads the client gave up on that the service kept (not an error)."""
    stored_ids = {int(r["id"]) for r in stored}
    rows = Counter(str(r["student_id"]) for r in stored)
    uploads = Counter(o.student for o in outcomes if o.student and o.attempts > 0)
    acked = [o for o in outcomes if o.ack_id is not None]
    lost = sorted(o.ack_id for o in acked if o.ack_id not in stored_ids)  # type: ignore[type-var]
    kept = Counter(o.student for o in acked if o.ack_id in stored_ids)
    duplicated = sum(max(0, n - uploads.get(s, 0)) for s, n in rows.items())
    unacked = sum(max(0, min(n, uploads.get(s, 0)) - kept.get(s, 0)) for s, n in rows.items())
    return {"stored": len(stored), "acknowledged": len(acked), "lost": len(lost), "lost_ids": lost[:20],
            "duplicated": duplicated, "stored_unacknowledged": unacked}


def throughput(outcomes: Iterable[Outcome]) -> float | None:
    """Successes per second between the first and the last one to end: the rate the system kept up
    (at most the offered rate in an open loop), without the first arrival's latency and the last
    one's in the denominator. None with fewer than two."""
    ends = sorted(o.done_at for o in outcomes if o.ok and o.done_at is not None)
    if len(ends) < 2 or ends[-1] <= ends[0]:
        return None
    return round((len(ends) - 1) / (ends[-1] - ends[0]), 2)


def build(scenario: str, target: str, requested: int, over: float, outcomes: list[Outcome], wall: float,
          extra: dict | None = None) -> dict:
    ok = [o for o in outcomes if o.ok]
    stage_names = dict.fromkeys(k for o in ok for k in o.stages)
    return {
        "scenario": scenario, "target": target, "requested": requested, "over_seconds": over,
        "completed": len(outcomes), "ok": len(ok), "failed": len(outcomes) - len(ok),
        "failures": dict(Counter(o.reason for o in outcomes if not o.ok).most_common()),
        "seconds": summary(o.seconds for o in ok if o.seconds is not None),
        "stages": {k: summary(o.stages[k] for o in ok if k in o.stages) for k in stage_names},
        "wall_seconds": round(wall, 3), "throughput_per_second": throughput(ok),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **(extra or {}),
    }


def render(report: dict) -> str:
    """The report for people (the same figures as `--json`)."""
    def fmt(s: dict) -> str:
        return "  ".join(f"{k} {_t(s[k])}" for k in ("p50", "p95", "p99", "max"))

    lines = [f"coursehub loadtest {report['scenario']} against {report['target']}",
             f"  {report['requested']} requested over {report['over_seconds']:.0f} s: {report['ok']} ok, "
             f"{report['failed']} failed (wall {report['wall_seconds']:.1f} s, load average {' '.join(map(str, report['load_average']))})"]
    if report.get("throughput_per_second"):
        lines.append(f"  throughput: {report['throughput_per_second']:.1f}/s from the first success to the last "
                     f"({report['ok'] / report['wall_seconds'] if report['wall_seconds'] else 0:.1f}/s of wall)")
    label = report.get("measured", "latency")
    lines.append(f"  {label}: {fmt(report['seconds'])}")
    for stage, s in report["stages"].items():
        lines.append(f"    {stage:<10} {fmt(s)}")
    if "lost" in report:
        lines.append(f"  read back from the grading service: {report['stored']} stored, {report['lost']} lost, "
                     f"{report['duplicated']} duplicated, {report['stored_unacknowledged']} stored but not "
                     "acknowledged to the client")
    for reason, n in report["failures"].items():
        lines.append(f"  failed: {n} x {reason}")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
