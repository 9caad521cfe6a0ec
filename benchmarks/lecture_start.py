"""Benchmark: LMS launch -> usable notebook (kernel answered) for 1 and for N students at once,
on the local platform, measured with `coursehub loadtest lecture-start`.

    .venv/bin/python benchmarks/lecture_start.py                  # 1 and 20 students, 3 repeats
    .venv/bin/python benchmarks/lecture_start.py --students 5 --repeats 1

Each student is a new user: an LTI 1.3 launch signed by the local LMS's key, the server start,
the assignment fetch and JupyterLab's page, then a kernel started through the server's REST API
answering `1+1` over its websocket. The runs are interleaved (1, N, 1, N, ...) on one platform;
p50/p95 are printed with min and median over the repeats and the machine's load average. There
is no upstream baseline (stock JupyterHub with ltiauthenticator starts no course server and opens
no assignment): the issue's targets are the reference, and the ratio printed is ours/target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from loadtest_support import load, loadtest, local_platform, median, min_median

#: Issue #17, "Time to a usable notebook": 1 student <= 4 s; 20 at once p95 <= 40 s.
TARGETS = {1: ("p50", 4.0), 20: ("p95", 40.0)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=20, help="students launching at once (default 20)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each size (default 3)")
    p.add_argument("--prestart-kernel", action=argparse.BooleanOptionalAction, default=True,
                   help="the hub starts the notebook's kernel while Lab loads (spawner.prestart_kernel; default on)")
    args = p.parse_args()
    sizes = [1, args.students] if args.students != 1 else [1]
    print(f"start: {load()}", flush=True)
    reports: dict[int, list[dict]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory(prefix="lecture-bench-") as tmp, local_platform(
            Path(tmp), {"spawner": {"prestart_kernel": args.prestart_kernel}}) as hub:
        for r in range(args.repeats):
            for n in sizes:
                rep = loadtest(hub, "lecture-start", "--users", str(n), "--grace", "15m")
                reports[n].append(rep)
                print(f"run {r + 1}/{args.repeats}, {n:>3} student(s): p50 {_s(rep['seconds']['p50'])}  "
                      f"p95 {_s(rep['seconds']['p95'])}  ok {rep['ok']}/{n}  failures {rep['failures'] or 0}  "
                      f"load average {' '.join(map(str, rep['load_average']))}", flush=True)
    prestart = "on" if args.prestart_kernel else "off"
    print(f"\n== launch -> usable notebook (kernel answered), local platform, kernel pre-start {prestart}, "
          f"{args.repeats} repeat(s) ==")
    for n, reps in reports.items():
        p50 = [x["seconds"]["p50"] for x in reps]
        p95 = [x["seconds"]["p95"] for x in reps]
        failed = sum(x["failed"] for x in reps)
        print(f"{n:>3} student(s): p50 {min_median(p50)} | p95 {min_median(p95)} | failed {failed}/{n * len(reps)}")
        stages = {k: median([x["stages"].get(k, {}).get("p50") for x in reps]) for k in ("launch", "open", "kernel")}
        print("     stage p50 medians: " + "  ".join(f"{k} {v:.2f} s" for k, v in stages.items() if v is not None))
        if n in TARGETS:
            q, target = TARGETS[n]
            ours = median([x["seconds"][q] for x in reps])
            if ours is not None:
                print(f"     {q} median / issue target ({target:.0f} s): {ours / target:.2f}x "
                      f"({'within' if ours <= target else 'above'} target)")
    print("upstream: no baseline (stock ltiauthenticator starts no course server and opens no assignment)")
    print(f"end: {load()}")
    return 0


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
