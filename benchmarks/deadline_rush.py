"""Benchmark: a deadline rush against the real hub with cold caches, measured with
`coursehub loadtest deadline`; nbgrader's filesystem submit on the same notebooks as the baseline.

    .venv/bin/python benchmarks/deadline_rush.py                     # 1,000 x 200 KB in 15 s, 3 repeats
    .venv/bin/python benchmarks/deadline_rush.py --n 200 --seconds 10 --repeats 1 --postgres

A fresh local platform (real JupyterHub, the grading service on SQLite or PostgreSQL). Every
repeat's students are new hub users, signed in through the local LMS, each with a new hub token;
their submissions go straight to the grading service, as user servers send them (--through-proxy:
through the hub's proxy). Their first submission makes the grading service ask the hub for the token and the course groups
(the caches are cold, as on a real deadline), and the hub commits each new token. Arrivals are
spread evenly over the window (open loop), retried with the same upload id; afterwards everything
is read back from the service: lost and duplicated must be 0. Printed: p50/p95/p99 with min and
median over repeats, the throughput achieved, the load average, the CPU each part used per
submission during the rush (hub, grading service, proxy, the load-test client, PostgreSQL, the rest
of the machine; from /proc, `process_cpu.py`), and the ratio to nbgrader's default exchange
(in-process, local disk, no network, no durability).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from loadtest_support import load, loadtest, local_platform, median, min_median
from process_cpu import CpuSampler
from process_cpu import render as render_cpu


def baseline_latencies(n: int, size: int, tmp: Path) -> list[float]:
    """nbgrader's `submit` with the default exchange, one student after the other."""
    from exchange_rush import baseline, notebook

    return baseline({f"st{i:04d}": notebook(f"st{i:04d}", size) for i in range(n)}, tmp)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="students (default 1000)")
    p.add_argument("--seconds", type=float, default=15.0, help="arrival window (default 15 s: ~67/s at 1,000)")
    p.add_argument("--size", default="200KB", help="notebook size (default 200KB)")
    p.add_argument("--repeats", type=int, default=3, help="runs (default 3)")
    p.add_argument("--first-contact", choices=("launch", "deadline"), default="launch",
                   help="launch (default): the students' servers met the grading service before the rush, as "
                        "their launch's assignment fetch does, and the rush starts once those answers are out of "
                        "date; deadline: every token is new to the service in the rush")
    p.add_argument("--postgres", action="store_true", help="grading database on PostgreSQL (default SQLite)")
    p.add_argument("--baseline-n", type=int, default=300, help="nbgrader submits for the baseline (default 300)")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--through-proxy", action="store_true",
                   help="submit through the hub's proxy (default: straight to the grading service, as user servers do)")
    args = p.parse_args()
    random.seed(4)
    print(f"start: {load()}", flush=True)
    reports = []
    with tempfile.TemporaryDirectory(prefix="deadline-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)
        if args.postgres:
            from support.pg import pg_cluster

            pg_ctx = pg_cluster(tmp)
        else:
            pg_ctx = nullcontext(None)
        with pg_ctx as pg:
            extra = {"grading": {"db_url": pg.url}} if pg else {}
            with local_platform(tmp / "platform", extra) as hub:
                for r in range(args.repeats):
                    with CpuSampler() as cpu:
                        rep = loadtest(hub, "deadline", "--students", str(args.n), "--over", f"{args.seconds}s",
                                       "--size", args.size, "--keep-users", "--first-contact", args.first_contact,
                                       *(["--through-proxy"] if args.through_proxy else []), admin=True)
                    reports.append(rep)
                    s = rep["seconds"]
                    print(f"run {r + 1}/{args.repeats}: ok {rep['ok']}/{args.n}  lost {rep['lost']}  "
                          f"duplicated {rep['duplicated']}  p50 {_ms(s['p50'])}  p95 {_ms(s['p95'])}  p99 {_ms(s['p99'])}  "
                          f"failures {rep['failures'] or 0}  load average {' '.join(map(str, rep['load_average']))}",
                          flush=True)
                    start, end = rep.get("window") or (None, None)
                    if start and rep["ok"]:
                        print("  " + render_cpu(cpu.window(start, end), rep["ok"], end - start), flush=True)
        db = "PostgreSQL" if args.postgres else "SQLite"
        rate = args.n / args.seconds if args.seconds else float("inf")
        path = "through the hub's proxy" if args.through_proxy else "straight to the grading service"
        met = ("servers met the service at launch" if args.first_contact == "launch"
               else "every token new to the service")
        print(f"\n== deadline rush, real hub, cold caches ({met}), {db}, {path}: {args.n} x {args.size} over "
              f"{args.seconds:g} s (~{rate:.0f}/s offered), {args.repeats} repeat(s) ==")
        for q in ("p50", "p95", "p99"):
            print(f"latency {q}: {min_median([x['seconds'][q] for x in reports])}")
        lost, dup = sum(x["lost"] for x in reports), sum(x["duplicated"] for x in reports)
        failed = sum(x["failed"] for x in reports)
        print(f"lost {lost}  duplicated {dup}  failed {failed}  (over {args.n * len(reports)} submissions; "
              "target: 0, 0, 0)")
        rates = [x["throughput_per_second"] for x in reports if x.get("throughput_per_second")]
        walls = [x["ok"] / x["wall_seconds"] for x in reports if x["wall_seconds"]]
        print(f"acknowledged per second, first to last acknowledgement (at most the offered rate): min "
              f"{min(rates):.1f}/s  median {median(rates):.1f}/s   (target: >= 200/s with p99 <= 500 ms)")
        print(f"  per second of wall, from the first arrival to the last acknowledgement: min {min(walls):.1f}/s  "
              f"median {median(walls):.1f}/s (one latency more in the window; below the offered rate even "
              "at zero latency)")
        if not args.skip_baseline:
            n = min(args.n, args.baseline_n)
            from coursehub.loadtest.cli import parse_size

            base = sorted(baseline_latencies(n, parse_size(args.size), tmp))
            from coursehub.loadtest.report import percentile

            b50, b99 = percentile(base, 50), percentile(base, 99)
            o50, o99 = median([x["seconds"]["p50"] for x in reports]), median([x["seconds"]["p99"] for x in reports])
            print(f"upstream (nbgrader default exchange, {n} submits in-process): p50 {b50 * 1000:.1f} ms  "
                  f"p99 {b99 * 1000:.1f} ms")
            if o50 and o99:
                print(f"ratio ours/upstream (medians): p50 {o50 / b50:.1f}x  p99 {o99 / b99:.1f}x "
                      "(ours adds HTTP, hub token and group checks, validation, fsync and a database commit)")
        print(f"end: {load()}")
    return 0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
