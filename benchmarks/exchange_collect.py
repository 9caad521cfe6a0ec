"""Collect N submissions: coursehub's exchange (grading service + plugin) against nbgrader's
default filesystem exchange on local disk, same data, in one run.

    .venv/bin/python benchmarks/exchange_collect.py            # 1,000 submissions
    .venv/bin/python benchmarks/exchange_collect.py --n 100

Both sides hold the same submissions (the demo assignment ps1, two notebooks, or the notebooks of
`--notebooks DIR`; each student's copy slightly different). Each timed run is a stock `ExchangeCollect.start()` into an empty course
directory; the median of `--repeat` runs is printed with the ratio (target: ours <= 2x). The two
collected trees are compared file by file (notebooks must be identical).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
import requests  # noqa: E402
from nbgrader import api as nbgrader_api  # noqa: E402
from nbgrader.auth import Authenticator  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402
from nbgrader.exchange import ExchangeFactory  # noqa: E402
from support.exchange import COURSE, make_courses  # noqa: E402
from support.fakehub import FakeHub, save  # noqa: E402
from support.grading import running_service  # noqa: E402
from support.net import wait_until  # noqa: E402
from support.venv import venv_path  # noqa: E402
from traitlets.config import Config  # noqa: E402

from coursehub.grading.archive import pack  # noqa: E402
from coursehub.grading.exchange import FACTORY_CLASSES  # noqa: E402

ASSIGNMENT = "ps1"
DEMO = ROOT / "courses" / "demo-101" / "source" / "ps1"


def student_files(student: str, source: Path = DEMO) -> dict[str, bytes]:
    """The notebooks `student` submits: each of `source`'s notebooks with one answer cell of theirs
    appended (so every submission differs), serialised as nbformat writes them."""
    out = {}
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        raise SystemExit(f"no notebooks (*.ipynb) in {source}")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cell = nbformat.v4.new_code_cell(f"# answer by {student}\nanswer = {len(student)}")
        if nb.nbformat_minor < 5:
            cell.pop("id", None)  # cell ids came with nbformat 4.5: an older notebook must not have one
        nb.cells.append(cell)
        out[path.name] = nbformat.writes(nb).encode()
    return out


def config(course_root: Path, **sections: dict) -> Config:
    c = Config()
    c.CourseDirectory.course_id = COURSE
    c.CourseDirectory.assignment_id = ASSIGNMENT
    c.CourseDirectory.root = str(course_root)
    for section, values in sections.items():
        for k, v in values.items():
            setattr(c[section], k, v)
    return c


def run(role: str, c: Config, cwd: Path) -> None:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        factory = ExchangeFactory(config=c)
        getattr(factory, role)(coursedir=CourseDirectory(config=c), authenticator=Authenticator(config=c),
                               config=c).start()
    finally:
        os.chdir(old)


def collected(course_root: Path) -> dict[str, bytes]:
    base = course_root / "submitted"
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.ipynb"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="submissions (default 1000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per side (default 3; median printed)")
    p.add_argument("--notebooks", type=Path, default=DEMO,
                   help="a folder of notebooks every student submits, one answer cell of theirs added "
                        "(default: the demo course's ps1)")
    args = p.parse_args()
    os.environ["PATH"] = venv_path()
    students = [f"st{i:04d}" for i in range(args.n)]
    data = {s: student_files(s, args.notebooks) for s in students}

    with tempfile.TemporaryDirectory(prefix="collect-") as tmpdir:
        tmp = Path(tmpdir)
        # --- upstream: nbgrader's default exchange on local disk ------------------------------
        exchange = tmp / "fs-exchange"
        exchange.mkdir()
        exchange.chmod(0o777)
        src = tmp / "fs-source"
        (src / "release" / ASSIGNMENT).mkdir(parents=True)
        for name, content in data[students[0]].items():
            (src / "release" / ASSIGNMENT / name).write_bytes(content)
        run("ReleaseAssignment", config(src, Exchange={"root": str(exchange)}), src)
        print(f"preparing {args.n} submissions in the filesystem exchange ...", flush=True)
        for s in students:
            home = tmp / "fs-homes" / s
            (home / ASSIGNMENT).mkdir(parents=True)
            for name, content in data[s].items():
                (home / ASSIGNMENT / name).write_bytes(content)
            run("Submit", config(home, Exchange={"root": str(exchange), "cache": str(tmp / "fs-cache" / s)},
                                 CourseDirectory={"student_id": s}), home)

        # --- ours: the grading service (SQLite, local disk) --------------------------------------
        courses = make_courses(tmp / "courses")
        hub = FakeHub()
        tokens = {s: hub.add_user(s, [f"course:{COURSE}:student"]) for s in students}
        tokens["inst"] = hub.add_user("inst", [f"course:{COURSE}:instructor"])
        save(hub, str(tmp / "hub.json"))
        hub_proc = subprocess.Popen([sys.executable, "-m", "support.fakehub", str(tmp / "hub.json")],
                                    cwd=ROOT / "tests", start_new_session=True, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: requests.get(f"{hub.api_url}/user", timeout=2).status_code == 403, timeout=30,
                       what="stand-in hub")
            with running_service(tmp / "svc", courses, hub) as svc:
                url = f"{svc.url}api/courses/{COURSE}/assignments/{ASSIGNMENT}"
                requests.put(f"{url}/release", data=pack(data[students[0]]), timeout=30,
                             headers={"Authorization": f"token {tokens['inst']}"}).raise_for_status()
                print(f"preparing {args.n} submissions in the grading service ...", flush=True)

                def submit(s: str) -> None:
                    requests.post(f"{url}/submissions", data=pack(data[s]), timeout=60,
                                  headers={"Authorization": f"token {tokens[s]}"}).raise_for_status()

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(submit, students))

                ours_cfg = {"ExchangeFactory": dict(FACTORY_CLASSES),
                            "CoursehubExchange": {"service_url": svc.url, "api_token": tokens["inst"]}}
                # nbgrader's collect opens the gradebook, which runs `alembic heads` in a subprocess
                # (seconds on a busy machine). Timed once as is; the timed runs reuse its answer so
                # the figures compare the exchange work itself.
                root = tmp / "fs-course-total"
                root.mkdir()
                t0 = time.perf_counter()
                run("Collect", config(root, Exchange={"root": str(exchange)}), root)
                fs_total = time.perf_counter() - t0
                heads = nbgrader_api.get_alembic_version()
                nbgrader_api.get_alembic_version = lambda: heads
                fs_times, ours_times = [], []
                for i in range(args.repeat):
                    fs_root = tmp / f"fs-course-{i}"
                    fs_root.mkdir()
                    t0 = time.perf_counter()
                    run("Collect", config(fs_root, Exchange={"root": str(exchange)}), fs_root)
                    fs_times.append(time.perf_counter() - t0)

                    ours_root = tmp / f"ours-course-{i}"
                    ours_root.mkdir()
                    t0 = time.perf_counter()
                    run("Collect", config(ours_root, **ours_cfg), ours_root)
                    ours_times.append(time.perf_counter() - t0)
                    print(f"run {i + 1}: filesystem {fs_times[-1]:.2f} s, ours {ours_times[-1]:.2f} s", flush=True)
        finally:
            hub_proc.terminate()
            hub_proc.wait(10)

        same = collected(tmp / "fs-course-0") == collected(tmp / "ours-course-0")
        count = len(list((tmp / "ours-course-0" / "submitted").iterdir()))
        fs, ours = statistics.median(fs_times), statistics.median(ours_times)
        print(f"\n== collect {args.n} submissions (2 notebooks each), median of {args.repeat} ==")
        print(f"upstream (nbgrader default exchange, local disk): {fs:.2f} s "
              f"(a first run with its gradebook subprocess check: {fs_total:.2f} s)")
        print(f"ours (grading service + plugin):                  {ours:.2f} s")
        print(f"ratio ours/upstream: {ours / fs:.2f}x (target <= 2x)")
        print(f"students collected: {count}; notebooks identical to upstream's: {same}")
        return 0 if same and count == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
