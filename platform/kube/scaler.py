"""Pre-lecture scale-up: set the z2jh user placeholders from the course schedules.

Run every few minutes (the chart's `scale-placeholders` CronJob). Each run is stateless: it works
out how many placeholder seats the lectures starting within the lead time (or still filling up)
need, and sets the `user-placeholder` StatefulSet's scale subresource to that, raising it before
a lecture and lowering it once students have arrived. Placeholders have a lower pod priority than
users, so arriving students preempt them while the evicted placeholders push the cluster
autoscaler to add nodes ahead of the next arrivals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from coursehub.platform.courses import Course

from .capacity import PlanParams, placeholder_demand, seat_for
from .names import PLACEHOLDER_STATEFULSET
from .schedule import sessions_between

log = logging.getLogger("coursehub.scaler")



@dataclass(frozen=True)
class Decision:
    replicas: int
    reasons: list[str]


def desired_replicas(courses: list[Course], params: PlanParams, at: dt.datetime, *,
                     base: int = 0, maximum: int = 500) -> Decision:
    """Placeholder replicas wanted at `at`: `base` plus the seats of lectures about to start."""
    by_id = {c.id: c for c in courses}
    window = dt.timedelta(minutes=params.lead_minutes + params.arrival_minutes)
    sessions = sessions_between(courses, at - window, at + window)
    seats = placeholder_demand(by_id, sessions, at, params, seat_for(courses))
    lead = dt.timedelta(minutes=params.lead_minutes)
    arrival = dt.timedelta(minutes=params.arrival_minutes)
    reasons = [f"{s.course_id} {s.start.isoformat(timespec='minutes')} ({s.users} students)"
               for s in sessions if s.start - lead <= at < s.start + arrival]
    wanted = base + seats
    if wanted > maximum:
        reasons.append(f"capped at {maximum} (wanted {wanted})")
        wanted = maximum
    return Decision(max(0, wanted), reasons)


def scale_body(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    """The Scale object sent to `.../statefulsets/<name>/scale` (a merge patch of spec.replicas)."""
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }


class ScaleApi(Protocol):
    """The two AppsV1Api calls the scaler uses (a fake in tests, the real client in a cluster)."""

    def read_namespaced_stateful_set_scale(self, name: str, namespace: str) -> Any: ...

    def patch_namespaced_stateful_set_scale(self, name: str, namespace: str, body: Any) -> Any: ...


def apply_replicas(api: ScaleApi, namespace: str, replicas: int, *, name: str = PLACEHOLDER_STATEFULSET,
                   dry_run: bool = False) -> tuple[int, int]:
    """Set the StatefulSet's replicas if they differ; returns (before, after)."""
    current = api.read_namespaced_stateful_set_scale(name, namespace)
    spec = current.spec if hasattr(current, "spec") else current["spec"]
    before = int((spec.replicas if hasattr(spec, "replicas") else spec.get("replicas")) or 0)
    if before == replicas or dry_run:
        return before, before
    api.patch_namespaced_stateful_set_scale(name, namespace, scale_body(name, namespace, replicas))
    return before, replicas


def _kube_apps_api():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.AppsV1Api()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file")
    p.add_argument("--courses-dir", type=Path, help="folder of courses (default: from the settings)")
    p.add_argument("--at", type=dt.datetime.fromisoformat, help="pretend it is this time (ISO, with offset)")
    p.add_argument("--namespace", help="namespace of the release (default: settings.kubernetes.namespace)")
    p.add_argument("--statefulset", default=PLACEHOLDER_STATEFULSET, help="placeholder StatefulSet name")
    p.add_argument("--base", type=int, default=0, help="placeholders to keep outside lecture starts")
    p.add_argument("--max", type=int, default=500, dest="maximum", help="never set more replicas than this")
    p.add_argument("--dry-run", action="store_true", help="print the decision, change nothing")


def run(args: argparse.Namespace) -> int:
    import sys

    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .capacity import params_from_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings(args.settings)
        courses = list(load_catalog(args.courses_dir or settings.courses_dir))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    at = args.at or dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        print("error: --at needs a UTC offset, e.g. 2026-11-23T09:50:00+01:00", file=sys.stderr)
        return 1
    decision = desired_replicas(courses, params_from_settings(settings), at, base=args.base, maximum=args.maximum)
    namespace = args.namespace or settings.kubernetes.namespace
    because = "; ".join(decision.reasons) or "no lecture starting"
    if args.dry_run:
        print(f"{args.statefulset}: would set {decision.replicas} replicas ({because})")
        return 0
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    try:
        before, after = apply_replicas(_kube_apps_api(), namespace, decision.replicas, name=args.statefulset)
    except ConfigException as e:
        print(f"error: no Kubernetes credentials (in-cluster or kubeconfig): {e}", file=sys.stderr)
        return 1
    except ApiException as e:
        hint = {403: "the service account may not scale it (Role coursehub-scaler)",
                404: "no such StatefulSet: is scheduling.userPlaceholder enabled?"}.get(e.status, e.reason)
        print(f"error: cannot set {namespace}/{args.statefulset} to {decision.replicas} replicas "
              f"(HTTP {e.status}): {hint}", file=sys.stderr)
        return 1
    log.info("%s/%s replicas %d -> %d (%s)", namespace, args.statefulset, before, after, because)
    return 0
