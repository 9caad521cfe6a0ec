"""Benchmark: `coursehub autograde` (sandbox on) against `nbgrader autograde`, same submissions.

    .venv/bin/python benchmarks/autograde.py [--n 100] [--workers N]

Builds a course from the demo assignment (courses/demo-101/source/ps1) with N varied submissions
(correct, partly correct, wrong, erroring, empty, edited tests, deleted grade cells, ...), copies it
twice, runs the upstream `nbgrader autograde` on one copy and `coursehub autograde` on the other,
then prints both times, throughput ratio, peak memory (sum of RSS over each command's process tree)
and whether every grade in the two gradebooks is identical, cell by cell.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the sample course lives with the tests (tests/support)

from support import samples  # noqa: E402


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall time and peak summed RSS of the command's whole process tree."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    t0 = time.monotonic()
    proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    elapsed = time.monotonic() - t0
    done.set()
    t.join()
    return elapsed, peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="number of submissions (default 100)")
    ap.add_argument("--workers", type=int, default=None, help="coursehub workers (default: number of cores)")
    ap.add_argument("--keep", action="store_true", help="keep the course folders")
    args = ap.parse_args()

    from coursehub.grading.sandbox.bwrap import check

    problem = check()
    if problem:
        print(f"error: the sandbox cannot run: {problem}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        base = samples.make_course(tmp / "base", REPO / "courses" / "demo-101" / "source" / "ps1")
        for student, variant in samples.varied(args.n):
            samples.write_submission(base, student, variant(samples.released(base)),
                                     timestamp="2026-12-18 12:00:00.000000 UTC")
        ups, ours = tmp / "nbgrader", tmp / "coursehub"
        shutil.copytree(base, ups)
        shutil.copytree(base, ours)
        print(f"{args.n} submissions of demo-101/ps1 (2 notebooks each), {os.cpu_count()} cores", flush=True)

        t_up, mem_up, p_up = run_measured([sys.executable, "-m", "nbgrader", "autograde", "ps1", "--log-level=ERROR"], ups)
        if p_up.returncode != 0:
            print(p_up.stdout[-2000:], p_up.stderr[-2000:], file=sys.stderr)
        print(f"nbgrader autograde : {t_up:7.1f} s  {args.n / t_up:6.2f} submissions/s  peak {mem_up / 2**20:6.0f} MiB",
              flush=True)

        cmd = [sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(ours), "--no-progress"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        t_our, mem_our, p_our = run_measured(cmd, ours)
        if p_our.returncode != 0:
            print(p_our.stdout[-2000:], p_our.stderr[-2000:], file=sys.stderr)
        print(f"coursehub autograde: {t_our:7.1f} s  {args.n / t_our:6.2f} submissions/s  peak {mem_our / 2**20:6.0f} MiB"
              "  (sandbox on)", flush=True)
        print(f"throughput ratio   : {t_up / t_our:.2f}x")

        a = samples.gradebook_snapshot(f"sqlite:///{ups / 'gradebook.db'}", "demo-101")
        b = samples.gradebook_snapshot(f"sqlite:///{ours / 'gradebook.db'}", "demo-101")
        diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        grades = sum(1 for k in a if k[3] == "grade")
        print(f"identical scores   : {'yes' if not diff and a else 'NO'} ({grades} grade cells, {len(a)} rows compared)")
        for k in diff[:20]:
            print(f"   differs: {k}: nbgrader={a.get(k)} coursehub={b.get(k)}")
        return 0 if not diff and a and p_up.returncode == 0 and p_our.returncode == 0 else 1
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
