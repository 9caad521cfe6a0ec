"""Gradebook export: `coursehub export` against `nbgrader export` on the same gradebook.

    .venv/bin/python benchmarks/export.py [--students 3000] [--assignments 40]

Builds an nbgrader gradebook (SQLite) with bulk inserts, then runs both exports as fresh processes
(interpreter start-up included for both), prints each wall time, the ratio, each process's peak
memory, and checks that the per-student totals agree. `coursehub export` runs --repeat times (CSV,
Canvas and xlsx in turn, interleaved) and min/median are printed with the load average. Targets:
>= 20x, and under 1 s for the CSV at 3,000 x 40 (process start included).
`--gradebook FILE` measures an nbgrader gradebook of your own (SQLite) instead: it is copied first, so
neither export can change it. A gradebook nbgrader made lacks coursehub's index on the grade table
(`SUMS_INDEX`, which coursehub's own gradebooks have): the first export adds it, and that run is
printed on its own line before the measured runs.
If nbgrader takes longer than --nbgrader-timeout seconds, the baseline is also measured at the
smaller --fallback-students size (200) and the figures say so.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # support.synthetic_gradebook
from support.venv import venv_env  # noqa: E402

# Peak memory from /proc/self/status VmHWM: the high-water mark of this process's own memory map.
# (ru_maxrss is not used: Linux carries the parent's high-water mark across fork/vfork + exec.)
WRAP = """
import re, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
    print("MAXRSS_KB", hwm, file=sys.stderr)
"""


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(module: str, args: list[str], cwd: Path, timeout: float) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of `python -m module args` in a fresh process.

    CPU time is printed too: on a shared machine the wall time also counts waiting for a core."""
    env = venv_env()
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAP, module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{module} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = next(int(line.split()[1]) for line in proc.stderr.splitlines()[::-1] if line.startswith("MAXRSS_KB"))
    return wall, cpu, rss / 1024


def build(folder: Path, students: int, assignments: int) -> tuple[str, float]:
    from support.synthetic_gradebook import build_gradebook

    db = folder / "gradebook.db"
    t0 = time.perf_counter()
    build_gradebook(f"sqlite:///{db}", students, assignments, seed=42, late_rate=0.1)
    return f"sqlite:///{db}", time.perf_counter() - t0


def copied(gradebook: Path, folder: Path) -> tuple[str, str]:
    """A copy of an existing nbgrader gradebook in `folder`, and what it holds."""
    import shutil
    import sqlite3

    if not gradebook.is_file():
        raise SystemExit(f"--gradebook {gradebook}: no such file")
    db = folder / "gradebook.db"
    shutil.copyfile(gradebook, db)
    try:
        with sqlite3.connect(db) as conn:
            students, assignments, submissions = (
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("student", "assignment", "submitted_assignment"))
    except sqlite3.DatabaseError as e:
        raise SystemExit(f"--gradebook {gradebook}: not an nbgrader gradebook ({e})") from e
    return f"sqlite:///{db}", (f"{gradebook}: {students} students x {assignments} assignments, "
                               f"{submissions} submissions")


def has_sums_index(db: Path) -> bool:
    import sqlite3
    from contextlib import closing

    from coursehub.grading.export import source

    with closing(sqlite3.connect(db)) as conn:
        return source.has_sums_index(conn)


def run_pair(folder: Path, url: str, timeout: float, ours_only: bool = False):
    ours = timed("coursehub.cli", ["export", "--course-dir", str(folder), "--db", url, "--out",
                                   str(folder / "ours.csv")], folder, timeout)
    if ours_only:
        return ours, None
    try:
        theirs = timed("nbgrader", ["export", f"--db={url}", f"--to={folder / 'nbgrader.csv'}"], folder, timeout)
    except subprocess.TimeoutExpired:
        theirs = None
    return ours, theirs


def check_totals(folder: Path) -> bool:
    ours = pd.read_csv(folder / "ours.csv", dtype={"student_id": str}).set_index("student_id")["total"]
    nb = pd.read_csv(folder / "nbgrader.csv", dtype={"student_id": str}).groupby("student_id")["score"].sum()
    return bool(((ours - nb.reindex(ours.index)).abs() < 1e-9).all())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", "--n", type=int, default=3000)
    ap.add_argument("--assignments", type=int, default=40)
    ap.add_argument("--nbgrader-timeout", type=float, default=900)
    ap.add_argument("--fallback-students", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each coursehub format (min/median printed)")
    ap.add_argument("--skip-nbgrader", action="store_true", help="only time coursehub export")
    ap.add_argument("--gradebook", type=Path,
                    help="an nbgrader gradebook (SQLite file) to export instead of a generated one; a copy is used")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        if a.gradebook:
            url, what = copied(a.gradebook, folder)
        else:
            url, build_s = build(folder, a.students, a.assignments)
            what = f"{a.students} students x {a.assignments} assignments, built in {build_s:.1f} s"
        print(f"gradebook: {what} ({os.path.getsize(folder / 'gradebook.db') / 2**20:.1f} MiB)")
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        if not has_sums_index(folder / "gradebook.db"):  # a gradebook nbgrader made: the first export adds it
            wall, _cpu, _mb = timed("coursehub.cli", ["export", "--course-dir", str(folder), "--db", url,
                                                     "--out", str(folder / "first.csv")], folder, a.nbgrader_timeout)
            print(f"coursehub export, first run (adds coursehub's grade index to the gradebook, once): {wall:5.2f} s"
                  f"{'' if has_sums_index(folder / 'gradebook.db') else ' (could not add it)'}")
        walls: dict[str, list[float]] = {"csv": [], "canvas": [], "xlsx": []}
        for _ in range(a.repeat):
            for fmt in walls:
                wall, _cpu, _mb = timed("coursehub.cli", ["export", "--course-dir", str(folder), "--db", url,
                                                         "--format", fmt, "--out", str(folder / f"ours.{fmt}")],
                                        folder, a.nbgrader_timeout)
                walls[fmt].append(wall)
        for fmt, ts in walls.items():
            print(f"coursehub export --format {fmt:6s}: min {min(ts):5.2f} s  median {statistics.median(ts):5.2f} s "
                  f"over {len(ts)} runs (process start included)")
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        (ours_s, ours_cpu, ours_mb), theirs = run_pair(folder, url, a.nbgrader_timeout, ours_only=a.skip_nbgrader)
        print(f"coursehub export: {ours_s:7.2f} s wall  {ours_cpu:7.2f} s CPU   peak RSS {ours_mb:6.0f} MiB")
        if theirs is not None:
            theirs_s, theirs_cpu, theirs_mb = theirs
            print(f"nbgrader export:  {theirs_s:7.2f} s wall  {theirs_cpu:7.2f} s CPU   peak RSS {theirs_mb:6.0f} MiB")
            print(f"ratio: {theirs_s / ours_s:.1f}x faster (wall), {theirs_cpu / ours_cpu:.1f}x (CPU)   "
                  f"totals identical: {check_totals(folder)}")
            ok = theirs_s / ours_s >= 20 and min(walls["csv"]) < 1
        elif a.skip_nbgrader:
            ok = min(walls["csv"]) < 1
        else:
            print(f"nbgrader export:  did not finish within {a.nbgrader_timeout:.0f} s "
                  f"(ratio at this size > {a.nbgrader_timeout / ours_s:.0f}x)")
            ok = min(walls["csv"]) < 1
    if theirs is None and not a.skip_nbgrader and a.fallback_students < a.students and not a.gradebook:
        with tempfile.TemporaryDirectory(prefix="bench-export-small-") as tmp:
            folder = Path(tmp)
            url, _ = build(folder, a.fallback_students, a.assignments)
            (s_ours, s_cpu, _), small = run_pair(folder, url, a.nbgrader_timeout)
            if small:
                print(f"at {a.fallback_students} x {a.assignments}: coursehub {s_ours:.2f} s ({s_cpu:.2f} s CPU), "
                      f"nbgrader {small[0]:.2f} s ({small[1]:.2f} s CPU), ratio {small[0] / s_ours:.1f}x wall, "
                      f"{small[1] / s_cpu:.1f}x CPU, totals identical: {check_totals(folder)}")
            else:
                print(f"at {a.fallback_students} x {a.assignments}: coursehub {s_ours:.2f} s, nbgrader did not finish "
                      f"within {a.nbgrader_timeout:.0f} s either")
    print("target (>= 20x, CSV < 1 s):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
