"""What the load-test benchmarks share: a real local platform (hub, proxy, grading service and
the local LMS) on free loopback ports, `coursehub loadtest` run against it as an operator runs it,
and min/median over repeats."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.hub import Hub, running_hub  # noqa: E402

LOCAL_LMS = {"auth": {"dev_login": False, "lti": {"local_lms": True}}, "textbook": {"enabled": False}}


@contextmanager
def local_platform(root: Path, extra: dict | None = None) -> Iterator[Hub]:
    """A fresh local platform in `root` (its own state: a new hub database, cold caches)."""
    from support.hub import deep_merge

    root.mkdir(parents=True, exist_ok=True)
    with running_hub(root, settings=deep_merge(LOCAL_LMS, extra or {}), timeout=240) as hub:
        yield hub


def loadtest(hub: Hub, *argv: str, admin: bool = False) -> dict:
    """`coursehub loadtest ... --json` against `hub`; its report (progress goes to the terminal)."""
    env = dict(os.environ)
    if admin:
        env["COURSEHUB_ADMIN_TOKEN"] = hub.token
    else:
        env.pop("COURSEHUB_ADMIN_TOKEN", None)
    cmd = [sys.executable, "-m", "coursehub.cli", "loadtest", *argv, "--settings", str(hub.settings_file), "--json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    if not proc.stdout.strip():
        raise SystemExit(f"coursehub loadtest failed (exit {proc.returncode}): {' '.join(argv)}")
    return json.loads(proc.stdout)


def min_median(values: list[float | None]) -> str:
    """'min X  median Y' over repeats, in seconds or milliseconds."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "min -  median -"
    return f"min {_t(min(vals))}  median {_t(statistics.median(vals))}"


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _t(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
