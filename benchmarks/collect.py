"""Collect N submissions: coursehub's exchange against nbgrader's default filesystem `ExchangeCollect`,
same submissions, one run, interleaved, with min and median and the load average.

    .venv/bin/python benchmarks/collect.py                  # 1,000 submissions, 5 repeats
    .venv/bin/python benchmarks/collect.py --n 200 --repeat 3
    .venv/bin/python benchmarks/collect.py --profile /tmp/collect.prof   # cProfile of our client side
    .venv/bin/python benchmarks/collect.py --notebooks DIR   # your notebooks instead of the demo's

Set-up (submitting through both exchanges) is `exchange_collect.py`'s; this adds the figures the
issue asks for (min/median over repeats, the ratio of medians and of minimums, `os.getloadavg()`
before, per run and after). Target: ours <= 1.5x the filesystem exchange. The collected trees are
compared file by file.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exchange_collect as ec  # noqa: E402
import requests  # noqa: E402
from nbgrader import api as nbgrader_api  # noqa: E402


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="submissions (default 1000)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per side, interleaved (default 5)")
    p.add_argument("--notebooks", type=Path, default=ec.DEMO,
                   help="a folder of notebooks every student submits, one answer cell of theirs added "
                        "(default: the demo course's ps1)")
    p.add_argument("--profile", type=Path, help="write a cProfile of our last collect run (client side) here")
    p.add_argument("--spy", type=Path, help="py-spy record the grading service during our last run (svg here)")
    args = p.parse_args()
    os.environ["PATH"] = ec.venv_path()
    students = [f"st{i:04d}" for i in range(args.n)]
    data = {s: ec.student_files(s, args.notebooks) for s in students}
    per_student = data[students[0]]
    print(f"each submission: {len(per_student)} notebooks, "
          f"{sum(map(len, per_student.values())) / 1024:.0f} KiB ({args.notebooks})")
    print(f"start: {_load()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="collect-") as tmpdir:
        tmp = Path(tmpdir)
        exchange = tmp / "fs-exchange"
        exchange.mkdir()
        exchange.chmod(0o777)
        src = tmp / "fs-source"
        (src / "release" / ec.ASSIGNMENT).mkdir(parents=True)
        for name, content in data[students[0]].items():
            (src / "release" / ec.ASSIGNMENT / name).write_bytes(content)
        ec.run("ReleaseAssignment", ec.config(src, Exchange={"root": str(exchange)}), src)
        print(f"preparing {args.n} submissions in the filesystem exchange ...", flush=True)
        for s in students:
            home = tmp / "fs-homes" / s
            (home / ec.ASSIGNMENT).mkdir(parents=True)
            for name, content in data[s].items():
                (home / ec.ASSIGNMENT / name).write_bytes(content)
            ec.run("Submit", ec.config(home, Exchange={"root": str(exchange), "cache": str(tmp / "fs-cache" / s)},
                                       CourseDirectory={"student_id": s}), home)

        courses = ec.make_courses(tmp / "courses")
        hub = ec.FakeHub()
        tokens = {s: hub.add_user(s, [f"course:{ec.COURSE}:student"]) for s in students}
        tokens["inst"] = hub.add_user("inst", [f"course:{ec.COURSE}:instructor"])
        ec.save(hub, str(tmp / "hub.json"))
        hub_proc = subprocess.Popen([sys.executable, "-m", "support.fakehub", str(tmp / "hub.json")],
                                    cwd=ec.ROOT / "tests", start_new_session=True, stderr=subprocess.DEVNULL)
        try:
            ec.wait_until(lambda: requests.get(f"{hub.api_url}/user", timeout=2).status_code == 403, timeout=30,
                          what="stand-in hub")
            with ec.running_service(tmp / "svc", courses, hub) as svc:
                url = f"{svc.url}api/courses/{ec.COURSE}/assignments/{ec.ASSIGNMENT}"
                requests.put(f"{url}/release", data=ec.pack(data[students[0]]), timeout=30,
                             headers={"Authorization": f"token {tokens['inst']}"}).raise_for_status()
                print(f"preparing {args.n} submissions in the grading service ...", flush=True)

                def submit(s: str) -> None:
                    requests.post(f"{url}/submissions", data=ec.pack(data[s]), timeout=60,
                                  headers={"Authorization": f"token {tokens[s]}"}).raise_for_status()

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(submit, students))
                ours_cfg = {"ExchangeFactory": dict(ec.FACTORY_CLASSES),
                            "CoursehubExchange": {"service_url": svc.url, "api_token": tokens["inst"]}}
                # nbgrader's collect opens the gradebook, which runs `alembic heads` in a subprocess:
                # once here, then reused, so the figures compare the exchange work itself.
                warm = tmp / "fs-course-warm"
                warm.mkdir()
                ec.run("Collect", ec.config(warm, Exchange={"root": str(exchange)}), warm)
                heads = nbgrader_api.get_alembic_version()
                nbgrader_api.get_alembic_version = lambda: heads
                warm = tmp / "ours-course-warm"
                warm.mkdir()
                ec.run("Collect", ec.config(warm, **ours_cfg), warm)
                fs_times, ours_times = [], []
                for i in range(args.repeat):
                    fs_root, ours_root = tmp / f"fs-course-{i}", tmp / f"ours-course-{i}"
                    fs_root.mkdir()
                    ours_root.mkdir()
                    order = [("fs", fs_root), ("ours", ours_root)]
                    for side, root in order if i % 2 == 0 else order[::-1]:  # alternate who goes first
                        cfg = ec.config(root, Exchange={"root": str(exchange)}) if side == "fs" else \
                            ec.config(root, **ours_cfg)
                        last_ours = side == "ours" and i == args.repeat - 1
                        prof = cProfile.Profile() if last_ours and args.profile else None
                        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-o",
                                                str(args.spy), "-p", str(svc.proc.pid), "-r", "200"],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
                            if last_ours and args.spy else None
                        if spy:
                            time.sleep(1.0)
                        t0 = time.perf_counter()
                        if prof:
                            prof.enable()
                        ec.run("Collect", cfg, root)
                        if prof:
                            prof.disable()
                            prof.dump_stats(args.profile)
                        if spy:
                            spy.send_signal(2)
                            spy.wait(60)
                        (fs_times if side == "fs" else ours_times).append(time.perf_counter() - t0)
                    print(f"run {i + 1}: filesystem {fs_times[-1]:.2f} s, ours {ours_times[-1]:.2f} s   {_load()}",
                          flush=True)
        finally:
            hub_proc.terminate()
            hub_proc.wait(10)

        same = ec.collected(tmp / "fs-course-0") == ec.collected(tmp / "ours-course-0")
        count = len(list((tmp / "ours-course-0" / "submitted").iterdir()))
    fs_med, ours_med = statistics.median(fs_times), statistics.median(ours_times)
    print(f"\n== collect {args.n} submissions ({len(per_student)} notebooks each), {args.repeat} interleaved runs per side ==")
    print(f"upstream (nbgrader ExchangeCollect, filesystem): min {min(fs_times):.2f} s  median {fs_med:.2f} s")
    print(f"ours (grading service + plugin):                 min {min(ours_times):.2f} s  median {ours_med:.2f} s")
    print(f"ratio ours/upstream: median {ours_med / fs_med:.2f}x, min {min(ours_times) / min(fs_times):.2f}x "
          f"(target <= 1.5x)")
    print(f"students collected: {count}; notebooks identical to upstream's: {same}")
    print(f"end: {_load()}")
    return 0 if same and count == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
