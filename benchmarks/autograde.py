"""Benchmark: `coursehub autograde` (sandbox on) against `nbgrader autograde`, same submissions.

    .venv/bin/python benchmarks/autograde.py [--n 100] [--workers N] [--repeat R]
    .venv/bin/python benchmarks/autograde.py --course DIR [--assignment ps1] [--n 40] ...

Builds a course from the demo assignment (courses/demo-101/source/ps1) with N varied submissions
(correct, partly correct, wrong, erroring, empty, edited tests, deleted grade cells, ...), or takes
an nbgrader course folder of your own (`--course`, e.g. made by `nbgrader quickstart course101`): its
submissions in submitted/*/ASSIGNMENT if it has any, else N varied ones made from the assignment's
source version (answers from the source, half answered, erroring, unanswered, edited or deleted
tests, a missing notebook); the release is generated if it is missing. Then it copies the course
twice, runs the upstream `nbgrader autograde` on one copy and `coursehub autograde` on the other,
then prints both times, throughput ratio, peak memory (sum of PSS over each command's process tree)
and whether every grade in the two gradebooks is identical, cell by cell. With --repeat R the two run
R times, interleaved (each on a fresh copy), and min and median are printed; the ratio is of medians.
Also printed: coursehub's start-up (until the first sandbox exists, and until its first kernel is
forked: grading can start), the machine's load average
around each run, and the floor measured on this machine: a bare kernel start and the execution of
one correct submission's cells (nbclient, no sandbox, no nbgrader steps).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
from support.venv import venv_env  # noqa: E402


def _memory(p: psutil.Process) -> int:
    """Proportional set size (PSS): a page shared by n processes counts 1/n in each, so kernels
    forked from one zygote (copy-on-write) are not counted as copies; RSS where PSS is unreadable."""
    try:
        return p.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return p.memory_info().rss


def _is_kernel(p: psutil.Process) -> bool:
    """A kernel forked by a sandbox's zygote: a zygote.py process whose parent is one too; with the
    kernel template, a template.py process whose parent is a zygote (a template.py process that
    runs as a slot's uid: the template itself runs as root). Never bwrap, whose command line names
    zygote.py too (it binds the file into the sandbox)."""
    cmd = " ".join(p.cmdline())
    parent = p.parent()
    if parent is None or "bwrap" in (p.name(), parent.name()):
        return False
    if "zygote.py" in cmd:
        return "zygote.py" in " ".join(parent.cmdline())
    return "template.py" in cmd and "template.py" in " ".join(parent.cmdline()) and parent.uids().real != 0


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, int, subprocess.CompletedProcess, tuple]:
    """Wall time, peak summed PSS of the command's whole process tree, and when the first sandbox
    (a bwrap process) and the first kernel (forked in a sandbox: a submission can start grading)
    appeared in that tree (None: never), sampled every 0.05 s until the first kernel, then every 0.1 s."""
    env = venv_env()
    t0 = time.monotonic()
    proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    first_sandbox: float | None = None
    first_kernel: float | None = None
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, first_sandbox, first_kernel
        while not done.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += _memory(p)
                        if first_sandbox is None and p.name() == "bwrap":
                            first_sandbox = time.monotonic() - t0
                        if first_kernel is None and first_sandbox is not None and _is_kernel(p):
                            first_kernel = time.monotonic() - t0
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.05 if first_kernel is None else 0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    elapsed = time.monotonic() - t0
    done.set()
    t.join()
    return elapsed, peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err), (first_sandbox, first_kernel)


def floor(course: Path, repeat: int, nbs: dict) -> tuple[float, float]:
    """The physical floor on this machine, best of `repeat`: (bare kernel start, executing one
    correct submission's cells `nbs`), with nbclient and a plain python3 kernel."""
    from nbclient import NotebookClient

    starts, cells = [], []
    for _ in range(repeat):
        run_cells = 0.0
        for nb in nbs.values():
            client = NotebookClient(nb, timeout=60, allow_errors=True, kernel_name="python3",
                                    resources={"metadata": {"path": str(course)}})
            t0 = time.monotonic()
            with client.setup_kernel():
                t1 = time.monotonic()
                for i, cell in enumerate(nb.cells):
                    client.execute_cell(cell, i)
                run_cells += time.monotonic() - t1
            starts.append(t1 - t0)
        cells.append(run_cells)
    return min(starts), min(cells)


def prepare(dest: Path, n: int, course: Path | None, assignment: str) -> tuple[Path, str, dict]:
    """The course to grade, at `dest`: (its folder, its course id, one correct submission)."""
    stamp = "2026-12-18 12:00:00.000000 UTC"
    if course is None:
        base = samples.make_course(dest, REPO / "courses" / "demo-101" / "source" / assignment, assignment)
        for student, variant in samples.varied(n):
            samples.write_submission(base, student, variant(samples.released(base, assignment)), assignment,
                                     timestamp=stamp)
        return base, "demo-101", samples.correct(samples.released(base, assignment))
    if not (course / "source" / assignment).is_dir():
        raise SystemExit(f"error: {course} has no source/{assignment}: not an nbgrader course folder with that assignment")
    shutil.copytree(course, dest, ignore=shutil.ignore_patterns("autograded", "feedback", ".ipynb_checkpoints"))
    from coursehub.grading.autograde.course import NbgraderCourse

    course_id = NbgraderCourse(dest).course_id
    if not (dest / "release" / assignment).is_dir():
        samples.generate_assignment(dest, assignment)
    variants = samples.any_assignment_variants(samples.source_answers(dest, assignment))
    if not list(dest.glob(f"submitted/*/{assignment}")):
        for student, variant in samples.varied(n, variants):
            samples.write_submission(dest, student, variant(samples.released(dest, assignment)), assignment,
                                     timestamp=stamp)
    return dest, course_id, variants["solved"](samples.released(dest, assignment))


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _at(t: float | None) -> str:
    return f"{t:.2f}" if t is not None else "n/a"


def _stats(xs: list[float], digits: int = 1) -> str:
    return f"min {min(xs):6.{digits}f}  median {statistics.median(xs):6.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="number of submissions (default 100)")
    ap.add_argument("--workers", type=int, default=None, help="coursehub workers (default: number of cores)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, interleaved (default 1)")
    ap.add_argument("--skip-nbgrader", action="store_true", help="only run coursehub (no ratio, no identical check)")
    ap.add_argument("--keep", action="store_true", help="keep the course folders")
    ap.add_argument("--course", type=Path, default=None,
                    help="an nbgrader course folder of your own (default: the demo course's ps1)")
    ap.add_argument("--assignment", default="ps1", help="the assignment to grade (default ps1)")
    args = ap.parse_args()

    from coursehub.grading.sandbox.bwrap import check

    problem = check()
    if problem:
        print(f"error: the sandbox cannot run: {problem}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        base, course_id, solved = prepare(tmp / "base", args.n, args.course and args.course.resolve(),
                                          args.assignment)
        n = len(list(base.glob(f"submitted/*/{args.assignment}")))
        # the sample course is an nbgrader folder named demo-101, not the catalog's course of that
        # name: grade it in coursehub's own environment (an empty catalog), as the tests do
        (tmp / "courses").mkdir()
        settings = tmp / "settings.yaml"
        settings.write_text(f"courses_dir: {tmp / 'courses'}\n")
        cores = os.cpu_count() or 1
        print(f"{n} submissions of {course_id}/{args.assignment} ({len(solved)} notebooks each), {cores} cores, "
              f"{args.repeat} run(s) of each, interleaved; load average before: {_load()}", flush=True)
        t_ups, m_ups, t_ours, m_ours, firsts, kernels = [], [], [], [], [], []
        ok = True
        diff: list = []
        a = b = {}
        for r in range(args.repeat):
            ups, ours = tmp / f"nbgrader{r}", tmp / f"coursehub{r}"
            shutil.copytree(base, ours)
            if not args.skip_nbgrader:
                shutil.copytree(base, ups)
                before = _load()
                t_up, mem_up, p_up, _ = run_measured(
                    [sys.executable, "-m", "nbgrader", "autograde", args.assignment, "--log-level=ERROR"], ups)
                if p_up.returncode != 0:
                    ok = False
                    print(p_up.stdout[-2000:], p_up.stderr[-2000:], file=sys.stderr)
                t_ups.append(t_up)
                m_ups.append(mem_up)
                print(f"  run {r + 1} nbgrader autograde : {t_up:7.1f} s  {n / t_up:6.2f} submissions/s  "
                      f"peak {mem_up / 2**20:6.0f} MiB  (load {before} -> {_load()})", flush=True)
            cmd = [sys.executable, "-m", "coursehub.cli", "autograde", args.assignment, "--course-dir", str(ours),
                   "--no-progress", "--settings", str(settings)]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            before = _load()
            t_our, mem_our, p_our, (first, kernel) = run_measured(cmd, ours)
            if p_our.returncode != 0:
                ok = False
                print(p_our.stdout[-2000:], p_our.stderr[-2000:], file=sys.stderr)
            t_ours.append(t_our)
            m_ours.append(mem_our)
            if first is not None:
                firsts.append(first)
            if kernel is not None:
                kernels.append(kernel)
            print(f"  run {r + 1} coursehub autograde: {t_our:7.1f} s  {n / t_our:6.2f} submissions/s  "
                  f"peak {mem_our / 2**20:6.0f} MiB  first sandbox at {_at(first)} s, first kernel at {_at(kernel)} s"
                  f"  (sandbox on; load {before} -> {_load()})", flush=True)
            if not args.skip_nbgrader:
                a = samples.gradebook_snapshot(f"sqlite:///{ups / 'gradebook.db'}", course_id, args.assignment)
                b = samples.gradebook_snapshot(f"sqlite:///{ours / 'gradebook.db'}", course_id, args.assignment)
                diff += [(r + 1, k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
                ok = ok and bool(a)
            if not args.keep:
                shutil.rmtree(ups, ignore_errors=True)
                shutil.rmtree(ours, ignore_errors=True)

        start, cells = floor(base, max(1, min(args.repeat, 3)), solved)
        per_sub = len(solved) * start + cells
        print("summary (seconds; ratio of medians):")
        if t_ups:
            print(f"  nbgrader autograde : {_stats(t_ups)} s   peak memory median {statistics.median(m_ups) / 2**20:6.0f} MiB")
        print(f"  coursehub autograde: {_stats(t_ours)} s   peak memory median {statistics.median(m_ours) / 2**20:6.0f} MiB")
        if firsts:
            print(f"  coursehub start-up : {_stats(firsts, 2)} s   (process start until the first sandbox exists)")
        if kernels:
            print(f"                       {_stats(kernels, 2)} s   (... until its first kernel is forked: grading starts;"
                  " sampled every 0.05 s)")
        if t_ups:
            print(f"  throughput ratio   : {statistics.median(t_ups) / statistics.median(t_ours):.2f}x "
                  f"(best runs {min(t_ups) / min(t_ours):.2f}x); memory ratio "
                  f"{statistics.median(m_ours) / max(1, statistics.median(m_ups)):.2f}x")
        print(f"  floor, measured    : bare kernel start {start:.2f} s, one submission's cells {cells:.2f} s; "
              f"{n} submissions at a fresh kernel per notebook on {cores} cores: "
              f"{n * per_sub / cores:.1f} s; student code alone: {n * cells / cores:.1f} s")
        print(f"  load average after : {_load()}")
        if not args.skip_nbgrader:
            grades = sum(1 for k in a if k[3] == "grade")
            print(f"identical scores   : {'yes' if not diff and ok else 'NO'} ({grades} grade cells, {len(a)} rows "
                  f"compared per run)")
            for r, k, x, y in diff[:20]:
                print(f"   run {r} differs: {k}: nbgrader={x} coursehub={y}")
        return 0 if not diff and ok else 1
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
