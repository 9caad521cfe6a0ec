"""Benchmark: LTI 1.3 launches into a real coursehub hub, against stock ltiauthenticator.

    .venv/bin/python benchmarks/lti_launch.py [--n 100] [--students 30] [--skip-baseline] [--skip-students]

1. Hub-side launch handling at N concurrent launches (validation, user and group updates,
   redirect; no server start): N launches are initiated against a fresh hub (cold JWKS cache),
   then all N id_token form posts hit the hub at once. Printed: p50/p95 of the hub's own handling
   time (from its request log) and of the latency the clients saw, failures, and how often the
   fake LMS's JWKS was fetched. The same data then goes to a hub running stock
   `ltiauthenticator.lti13.auth.LTI13Authenticator` (a fresh PyJWKClient, i.e. a blocking JWKS
   fetch, per launch; no course groups), and the ratio is printed. The fake LMS answers JWKS
   requests after --jwks-delay-ms (default 50 ms, a remote LMS) in both runs.
2. Launch to open notebook for S students at once with the local spawner: an instructor launches
   the assignment and releases it (formgrader), then every student's launch (custom
   assignment=ps1) is followed like a browser (spawn, spawn-pending, open with the exchange fetch,
   JupyterLab's OAuth) until the JupyterLab page for the notebook answers 200. p50/p95 and failures are
   printed. There is no upstream baseline for this one (stock ltiauthenticator does not start a
   course server or open an assignment).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import support.hub as hubsupport  # noqa: E402
from fakelms import LaunchSpec, running_fake_lms  # noqa: E402
from fakelms.client import follow_to_server, launch, parse_form, release_assignment  # noqa: E402
from fakelms.server import ROLE  # noqa: E402
from support.hub import running_hub  # noqa: E402

PLATFORM = "fakelms"
CALLBACK_LOG = re.compile(r"30[23] POST /hub/lti13/oauth_callback .*? ([0-9.]+)ms")

STOCK_CONFIG = """
from ltiauthenticator.lti13.auth import LTI13Authenticator
c.JupyterHub.authenticator_class = LTI13Authenticator
c.LTI13Authenticator.issuer = {issuer!r}
c.LTI13Authenticator.client_id = {{{client_id!r}}}
c.LTI13Authenticator.authorize_url = {auth_url!r}
c.LTI13Authenticator.jwks_endpoint = {jwks_url!r}
c.LTI13Authenticator.username_key = "sub"
c.LTI13LaunchValidator.time_leeway = 60
c.Authenticator.manage_groups = False
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def make_courses(root: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from lti.conftest import make_courses as make

    return make(root)


def prepare_launches(hub_url: str, lms, subs: list[str]) -> list[tuple[requests.Session, str, dict]]:
    """Login initiation and the LMS's auth page for each student (not timed): ready form posts."""

    def one(sub: str) -> tuple[requests.Session, str, dict]:
        s = requests.Session()
        spec = LaunchSpec(sub=sub, custom={"assignment": "ps1"})
        r = s.get(lms.login_initiation(hub_url, lms.prepare(spec), spec), timeout=120)
        r.raise_for_status()
        action, fields = parse_form(r.text)
        return s, action, fields

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, subs))


def fire(prepared: list[tuple[requests.Session, str, dict]]) -> tuple[list[float], int, float]:
    """All form posts at once; client-side latencies, failures, wall time."""
    barrier = threading.Barrier(len(prepared))
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def post(item: tuple[requests.Session, str, dict]) -> None:
        nonlocal failures
        s, action, fields = item
        # A fresh connection: one kept alive since the launch was prepared may be closed by the
        # proxy's idle timeout just as the post goes out (a reset no browser would report).
        s.close()
        barrier.wait()
        t0 = time.perf_counter()
        try:
            r = s.post(action, data=fields, allow_redirects=False, timeout=300)
            ok = r.status_code in (302, 303)
        except requests.RequestException:
            ok = False
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt * 1000)
            failures += 0 if ok else 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(prepared)) as pool:
        list(pool.map(post, prepared))
    return latencies, failures, time.perf_counter() - t0


def hub_times(log: str) -> list[float]:
    return [float(m) for m in CALLBACK_LOG.findall(log)]


def run_launch_burst(root: Path, n: int, stock: bool, jwks_delay: float) -> dict:
    courses = make_courses(root)
    with running_fake_lms() as lms:
        lms.jwks_delay = jwks_delay
        settings = {"courses_dir": str(courses), "auth": {"dev_login": False, "lti": {
            "platforms": [lms.platform_settings(PLATFORM)], "local_lms": False}},
            "hub": {"concurrent_spawn_limit": 200}}
        original = hubsupport.TEST_CONFIG
        if stock:
            stock_config = STOCK_CONFIG.format(
                issuer=lms.issuer, client_id=lms.client_id, auth_url=f"{lms.url}/auth", jwks_url=f"{lms.url}/jwks")
            hubsupport.TEST_CONFIG = original + stock_config.replace("{", "{{").replace("}", "}}")
        try:
            with running_hub(root, settings=settings, timeout=180) as hub:
                subs = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(n)]
                prepared = prepare_launches(hub.url, lms, subs)
                before = lms.jwks_requests
                latencies, failures, wall = fire(prepared)
                time.sleep(0.5)  # the last log lines
                handled = hub_times(hub.log())
                # The same students again (a lecture start: most students have launched before).
                prepared = prepare_launches(hub.url, lms, subs)
                again_lat, again_fail, again_wall = fire(prepared)
                time.sleep(0.5)
                again = hub_times(hub.log())[len(handled):]
                groups_ok = None
                if not stock:
                    users = hub.api("GET", "/users", params={"limit": n + 10}).json()
                    groups_ok = sum("course:demo-101:student" in u["groups"] for u in users)
                return {"latencies": latencies, "handled": handled, "failures": failures, "wall": wall,
                        "jwks": lms.jwks_requests - before, "groups_ok": groups_ok,  # both bursts
                        "again": again, "again_latencies": again_lat, "again_failures": again_fail,
                        "again_wall": again_wall}
        finally:
            hubsupport.TEST_CONFIG = original


def follow_to_lab(s: requests.Session, hub_url: str, r: requests.Response, deadline: float) -> str:
    """'' when JupyterLab's page for the notebook answered, else why not."""
    url = None
    while time.monotonic() < deadline:
        if r.status_code in (301, 302, 303):
            loc = r.headers["Location"]
            url = hub_url + loc if loc.startswith("/") else loc
        elif r.status_code == 200 and url and "/lab/tree/" in url:
            return "" if ("JupyterLab" in r.text or "jupyter-config-data" in r.text) else "lab page without JupyterLab"
        elif r.status_code == 200 and url and "spawn-pending" in url:
            time.sleep(1)
        else:
            marker = re.search(r'id="(lti-[a-z-]+)"', r.text or "")
            return f"HTTP {r.status_code} at {(url or '?').split('?')[0]}" + (f" ({marker[1]})" if marker else "")
        r = s.get(url, allow_redirects=False, timeout=300)
    return "timed out"


def run_students(root: Path, students: int, http_timeout: int | None = None) -> dict:
    courses = make_courses(root)
    original = hubsupport.TEST_CONFIG
    if http_timeout:
        hubsupport.TEST_CONFIG = original + f"\nc.Spawner.http_timeout = {int(http_timeout)}\n"
    try:
        return _run_students(courses, root, students)
    finally:
        hubsupport.TEST_CONFIG = original


def _run_students(courses: Path, root: Path, students: int) -> dict:
    with running_fake_lms() as lms:
        settings = {"courses_dir": str(courses), "auth": {"dev_login": False, "lti": {
            "platforms": [lms.platform_settings(PLATFORM)], "local_lms": False}},
            "hub": {"start_timeout": 600, "concurrent_spawn_limit": 200}}
        with running_hub(root, settings=settings, timeout=180) as hub:
            # As in a course: the instructor launches the assignment (formgrader) and releases it.
            prof = requests.Session()
            spec = LaunchSpec(sub="bench-instructor", roles=[ROLE["instructor"]], custom={"assignment": "ps1"})
            r = launch(prof, hub.url, lms, spec)
            teacher = re.search(r"/user/([^/]+)/", follow_to_server(prof, hub.url, r.headers["Location"]))[1]
            release_assignment(hub, teacher)
            barrier = threading.Barrier(students)
            times: list[float] = []
            failures = 0
            reasons: dict[str, int] = {}
            lock = threading.Lock()

            def student(i: int) -> None:
                nonlocal failures
                s = requests.Session()
                spec = LaunchSpec(sub=f"student-{i}-{uuid.uuid4().hex[:6]}", custom={"assignment": "ps1"})
                hint = lms.prepare(spec)
                barrier.wait()
                t0 = time.perf_counter()
                try:
                    r = s.get(lms.login_initiation(hub.url, hint, spec), timeout=300)
                    action, fields = parse_form(r.text)
                    r = s.post(action, data=fields, allow_redirects=False, timeout=300)
                    why = follow_to_lab(s, hub.url, r, time.monotonic() + 900)
                except (requests.RequestException, AssertionError) as e:
                    why = type(e).__name__
                with lock:
                    if not why:
                        times.append(time.perf_counter() - t0)
                    else:
                        failures += 1
                        why = re.sub(r"https?://[^ ]*/(hub|user)/([a-z-]+)/[^ ]*", r"/\1/\2/<user>", why)
                        reasons[why] = reasons.get(why, 0) + 1

            with ThreadPoolExecutor(students) as pool:
                list(pool.map(student, range(students)))
            errors: dict[str, int] = {}
            for line in hub.log().splitlines():
                if line.startswith("[E ") or "didn't respond" in line or "timeout" in line.lower():
                    msg = re.sub(r"fakelms-[a-z0-9]+|127\.0\.0\.1:[0-9]+|[0-9.]+ ?(ms|seconds)", "*",
                                 line.split("] ", 1)[-1])[:160]
                    errors[msg] = errors.get(msg, 0) + 1
            return {"times": times, "failures": failures, "reasons": reasons, "errors": errors}


def show(label: str, r: dict, n: int, extra: str = "") -> None:
    for name, hub_key, lat_key, fail_key, wall_key in (
            ("new users", "handled", "latencies", "failures", "wall"),
            ("returning", "again", "again_latencies", "again_failures", "again_wall")):
        print(f"{label} {name:9}: hub handling p50 {pct(r[hub_key], 50):7.1f} ms  p95 {pct(r[hub_key], 95):7.1f} ms"
              f" | client latency p50 {pct(r[lat_key], 50):7.1f} ms  p95 {pct(r[lat_key], 95):7.1f} ms"
              f" | wall {r[wall_key]:.2f} s | failures {r[fail_key]}/{n}"
              + (f" | JWKS fetches (both bursts) {r['jwks']}" if name == "new users" else "")
              + (extra if name == "new users" else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="concurrent launches (part 1)")
    p.add_argument("--students", type=int, default=30, help="simultaneous students (part 2)")
    p.add_argument("--jwks-delay-ms", type=float, default=50,
                   help="time the fake LMS takes to answer a JWKS request (a real LMS is remote)")
    p.add_argument("--http-timeout", type=int, default=None,
                   help="part 2: Spawner.http_timeout in seconds (default: the platform's, 60 s)")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--skip-students", action="store_true")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="lti-bench-") as tmp:
        print(f"== 1. hub-side launch handling, {args.n} concurrent launches (server start excluded;"
              f" the fake LMS answers JWKS requests in {args.jwks_delay_ms:.0f} ms)")
        ours = run_launch_burst(Path(tmp) / "ours", args.n, stock=False, jwks_delay=args.jwks_delay_ms / 1000)
        show("coursehub  ", ours, args.n, extra=f" | users in course group {ours['groups_ok']}")
        if ours["jwks"] > 1:
            print("  !! JWKS fetched more than once")
        if not args.skip_baseline:
            stock = run_launch_burst(Path(tmp) / "stock", args.n, stock=True, jwks_delay=args.jwks_delay_ms / 1000)
            show("stock 1.6.3", stock, args.n)
            for label, key in (("new users, hub handling", "handled"), ("new users, client latency", "latencies"),
                               ("returning, hub handling", "again"), ("returning, client latency", "again_latencies")):
                ratios = [pct(stock[key], q) / pct(ours[key], q) for q in (50, 95)]
                print(f"ratio stock/coursehub {label}: p50 {ratios[0]:.2f}x  p95 {ratios[1]:.2f}x")
            print(f"ratio stock/coursehub wall time: new users {stock['wall'] / ours['wall']:.2f}x, "
                  f"returning {stock['again_wall'] / ours['again_wall']:.2f}x")
        if not args.skip_students:
            print(f"\n== 2. launch to open notebook, {args.students} simultaneous students, local spawner"
                  f" (Spawner.http_timeout {args.http_timeout or 'as configured by the platform'})")
            res = run_students(Path(tmp) / "students", args.students, args.http_timeout)
            t = res["times"]
            print(f"coursehub  : p50 {pct(t, 50):6.1f} s  p95 {pct(t, 95):6.1f} s  max {max(t) if t else float('nan'):6.1f} s"
                  f" | failures {res['failures']}/{args.students}"
                  f" | mean {statistics.mean(t) if t else float('nan'):.1f} s")
            for why, count in sorted(res["reasons"].items(), key=lambda kv: -kv[1])[:5]:
                print(f"  failed: {count} x {why}")
            for msg, count in sorted(res["errors"].items(), key=lambda kv: -kv[1])[:5]:
                print(f"  hub log: {count} x {msg}")
            print("upstream   : no baseline (stock ltiauthenticator starts no course server and opens no assignment)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
