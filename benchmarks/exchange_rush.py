"""Deadline rush: N students each submit a notebook within a window, against the grading service
on PostgreSQL (our path), and the same notebooks through nbgrader's default filesystem exchange
(the upstream baseline, in-process, no network, no durability).

    .venv/bin/python benchmarks/exchange_rush.py            # 1,000 students, 200 KB, 60 s
    .venv/bin/python benchmarks/exchange_rush.py --n 50 --seconds 10

Prints acknowledged, lost (must be 0), duplicated (must be 0), p50/p95/p99 latency, the service's
peak RSS, and the baseline's latencies with the ratio. Arrivals are spread uniformly at random
over the window (open loop: a slow service does not slow the arrivals down). Clients retry
failures with the same upload id, as the nbgrader plugin does. A stand-in for the hub's REST API
runs in its own process (tests/support/fakehub.py): the service still checks every token and
looks up every student's groups through HubOAuth, as it does against the real hub.

This isolates the grading service with warm, in-memory hub answers. A real deadline is cold and
goes through the real hub: `benchmarks/deadline_rush.py` (with `coursehub loadtest deadline`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402
from support.exchange import COURSE, make_courses  # noqa: E402
from support.fakehub import FakeHub, save  # noqa: E402
from support.grading import running_service  # noqa: E402
from support.net import wait_until  # noqa: E402
from support.pg import pg_cluster  # noqa: E402
from support.venv import venv_path  # noqa: E402

from coursehub.grading.archive import pack  # noqa: E402
from coursehub.grading.models import Submission  # noqa: E402

ASSIGNMENT = "ps1"


def notebook(student: str, size: int) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Problem set 1 ({student})"),
                nbformat.v4.new_code_cell("answer = 42\nprint(answer)")]
    base = len(nbformat.writes(nb).encode())
    filler = random.randbytes(max(0, size - base - 200) // 2).hex()
    nb.cells.append(nbformat.v4.new_markdown_cell(filler))
    return nbformat.writes(nb).encode()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class RssMonitor(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)


def rush(svc_url: str, tokens: dict[str, str], bodies: dict[str, bytes], seconds: float, workers: int) -> dict:
    students = list(bodies)
    start = time.monotonic() + 1.0
    schedule = sorted((start + random.uniform(0, seconds), s) for s in students)
    results: dict[str, dict] = {}
    local = threading.local()

    def submit(at: float, student: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        uid = uuid.uuid4().hex
        url = f"{svc_url}api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions"
        headers = {"Authorization": f"token {tokens[student]}", "X-Upload-Id": uid,
                   "Content-Type": "application/x-tar"}
        attempts = 0
        t0 = time.monotonic()
        while attempts < 10:
            attempts += 1
            try:
                r = local.session.post(url, data=bodies[student], headers=headers, timeout=60)
                if r.status_code in (200, 201):
                    results[student] = {"uid": uid, "latency": time.monotonic() - t0, "attempts": attempts,
                                        "id": r.json()["id"], "late_start": time.monotonic() - at}
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        results[student] = {"uid": uid, "error": True, "attempts": attempts}

    with ThreadPoolExecutor(workers) as pool:
        for at, student in schedule:
            pool.submit(submit, at, student)
    return results


def baseline(bodies: dict[str, bytes], tmp: Path) -> list[float]:
    """nbgrader's default exchange: release once, then each student's `submit` in-process."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory
    from traitlets.config import Config

    exchange = tmp / "fs-exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    course = tmp / "fs-course"
    (course / "release" / ASSIGNMENT).mkdir(parents=True)
    (course / "release" / ASSIGNMENT / "p1.ipynb").write_bytes(next(iter(bodies.values())))

    def cfg(**extra: dict) -> Config:
        c = Config()
        c.Exchange.root = str(exchange)
        c.CourseDirectory.course_id = COURSE
        c.CourseDirectory.assignment_id = ASSIGNMENT
        c.CourseDirectory.root = str(course)
        c.CourseDirectory.max_file_size = 10**6
        for section, values in extra.items():
            for k, v in values.items():
                setattr(c[section], k, v)
        return c

    c = cfg()
    ExchangeFactory(config=c).ReleaseAssignment(coursedir=CourseDirectory(config=c),
                                                authenticator=Authenticator(config=c), config=c).start()
    latencies = []
    cwd = os.getcwd()
    try:
        for student, body in bodies.items():
            home = tmp / "fs-homes" / student
            (home / ASSIGNMENT).mkdir(parents=True)
            (home / ASSIGNMENT / "p1.ipynb").write_bytes(body)
            os.chdir(home)
            c = cfg(Exchange={"cache": str(tmp / "fs-cache" / student)}, CourseDirectory={"student_id": student})
            t0 = time.monotonic()
            ExchangeFactory(config=c).Submit(coursedir=CourseDirectory(config=c),
                                             authenticator=Authenticator(config=c), config=c).start()
            latencies.append(time.monotonic() - t0)
    finally:
        os.chdir(cwd)
    return latencies


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="students (default 1000)")
    p.add_argument("--seconds", type=float, default=60.0, help="window the submissions arrive in (default 60)")
    p.add_argument("--size", type=int, default=200_000, help="notebook size in bytes (default 200 KB)")
    p.add_argument("--workers", type=int, default=64, help="client threads (default 64)")
    p.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    args = p.parse_args()
    random.seed(4)
    os.environ["PATH"] = venv_path()

    with tempfile.TemporaryDirectory(prefix="rush-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)
        courses = make_courses(tmp / "courses")
        hub = FakeHub()
        tokens = {f"st{i:04d}": hub.add_user(f"st{i:04d}", [f"course:{COURSE}:student"]) for i in range(args.n)}
        tokens["inst"] = hub.add_user("inst", [f"course:{COURSE}:instructor"])
        save(hub, str(tmp / "hub.json"))
        hub_proc = subprocess.Popen([sys.executable, "-m", "support.fakehub", str(tmp / "hub.json")],
                                    cwd=ROOT / "tests", start_new_session=True)
        try:
            wait_until(lambda: requests.get(f"{hub.api_url}/user", timeout=2).status_code == 403, timeout=30,
                       what="stand-in hub")
            print(f"preparing {args.n} notebooks of {args.size // 1000} KB ...", flush=True)
            bodies = {s: pack({"p1.ipynb": notebook(s, args.size)}) for s in tokens if s != "inst"}
            grading = {"max_file_bytes": 2 * args.size + 2**20, "max_submission_bytes": 4 * args.size + 2**20}
            if args.sqlite:
                from contextlib import nullcontext

                pg_ctx = nullcontext(None)
            else:
                pg_ctx = pg_cluster(tmp)
            with pg_ctx as pg:
                if pg is not None:
                    grading["db_url"] = pg.url
                db_url = pg.url if pg else f"sqlite:///{tmp / 'svc' / 'state' / 'grading.sqlite'}"
                with running_service(tmp / "svc", courses, hub, **grading) as svc:
                    r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/{ASSIGNMENT}/release",
                                     data=bodies[next(iter(bodies))], headers={"Authorization": f"token {tokens['inst']}"},
                                     timeout=30)
                    r.raise_for_status()
                    monitor = RssMonitor(svc.proc.pid)
                    monitor.start()
                    print(f"rush: {args.n} students within {args.seconds:.0f} s "
                          f"({'SQLite' if args.sqlite else 'PostgreSQL 15'}) ...", flush=True)
                    t0 = time.monotonic()
                    results = rush(svc.url, tokens, bodies, args.seconds, args.workers)
                    wall = time.monotonic() - t0
                    monitor.stop.set()
                    engine = create_engine(db_url)
                    with engine.connect() as conn:
                        rows = conn.execute(select(Submission.upload_id, Submission.student_id)).all()
                        dupes = conn.execute(select(func.count()).select_from(
                            select(Submission.upload_id).group_by(Submission.student_id, Submission.upload_id)
                            .having(func.count() > 1).subquery())).scalar()
                    engine.dispose()
        finally:
            hub_proc.terminate()
            hub_proc.wait(10)

        ok = {s: r for s, r in results.items() if not r.get("error")}
        stored = {uid for uid, _ in rows}
        lost = [s for s, r in ok.items() if r["uid"] not in stored]
        duplicated = len(rows) - len(stored) + (dupes or 0)
        lat = [r["latency"] * 1000 for r in ok.values()]
        retried = sum(1 for r in ok.values() if r["attempts"] > 1)
        print(f"\n== ours: grading service, {len(results)} students, 200 KB notebook each, window {args.seconds:.0f} s ==")
        print(f"acknowledged: {len(ok)} / {len(results)}   failed after retries: {len(results) - len(ok)}   "
              f"retried: {retried}")
        print(f"lost: {len(lost)}   duplicated: {duplicated}   rows stored: {len(rows)}")
        print(f"latency ms: p50 {pct(lat, 50):.0f}  p95 {pct(lat, 95):.0f}  p99 {pct(lat, 99):.0f}  "
              f"max {max(lat) if lat else float('nan'):.0f}   (target p99 <= 500)")
        print(f"service peak RSS: {monitor.peak / 2**20:.0f} MiB   wall: {wall:.1f} s")

        print("\n== upstream: nbgrader default exchange submit (in-process, local disk, same notebooks) ==")
        base = [x * 1000 for x in baseline(bodies_to_notebooks(bodies), tmp)]
        print(f"latency ms: p50 {pct(base, 50):.0f}  p95 {pct(base, 95):.0f}  p99 {pct(base, 99):.0f}  "
              f"mean {statistics.mean(base):.1f}")
        print(f"\nratio ours/upstream: p50 {pct(lat, 50) / pct(base, 50):.1f}x  p99 {pct(lat, 99) / pct(base, 99):.1f}x "
              "(ours adds HTTP, hub token checks, validation, fsync and a database commit)")
        print(json.dumps({"acknowledged": len(ok), "lost": len(lost), "duplicated": duplicated,
                          "p50_ms": round(pct(lat, 50)), "p95_ms": round(pct(lat, 95)), "p99_ms": round(pct(lat, 99)),
                          "peak_rss_mib": round(monitor.peak / 2**20), "baseline_p50_ms": round(pct(base, 50), 1),
                          "baseline_p99_ms": round(pct(base, 99), 1)}))
        return 0 if not lost and not duplicated and len(ok) == len(results) else 1


def bodies_to_notebooks(bodies: dict[str, bytes]) -> dict[str, bytes]:
    from coursehub.grading.archive import UploadLimits, read_archive

    return {s: read_archive(b, UploadLimits(2**30, 2**30, 10))["p1.ipynb"] for s, b in bodies.items()}


if __name__ == "__main__":
    sys.exit(main())
