"""Benchmark: `/api/nbconvert` on a Jupyter Server with coursehub's `nbconvert_formats` extension
against Jupyter Server's own handler, same environment, interleaved.

    .venv/bin/python benchmarks/nbconvert_formats.py [--repeat 3]

JupyterLab asks for the export formats on every page load once a notebook opens. Per run: a fresh
server (loopback, a token) with the extension on or off; the first request's time, the slowest
`/api/status` answer while it runs (how long the server's other requests waited), and a second
request's time (a reload). Printed: each run, min/median per side, the ratio of the second
requests' medians, the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from coursehub.platform.ports import free_port

EXTENSION = "coursehub.platform.nbconvert_formats"


def one_run(extension: bool, tmp: Path) -> dict[str, float]:
    config = tmp / ("on" if extension else "off")
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {EXTENSION: extension}}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_CONFIG_PATH": str(config),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data")}
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter-server"), f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=bench", f"--ServerApp.root_dir={tmp}", "--no-browser", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": "token bench"}
    try:
        _wait_ready(base, auth)
        time.sleep(1.0)  # the server's start-up work is over
        waits: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                t = time.perf_counter()
                requests.get(f"{base}/api/status", headers=auth, timeout=60)
                waits.append(time.perf_counter() - t)
                time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        t = time.perf_counter()
        first = requests.get(f"{base}/api/nbconvert", headers=auth, timeout=120)
        first_s = time.perf_counter() - t
        done.set()
        poller.join()
        t = time.perf_counter()
        second = requests.get(f"{base}/api/nbconvert", headers=auth, timeout=120)
        second_s = time.perf_counter() - t
        if not (first.ok and second.ok and first.json() == second.json()):
            raise SystemExit(f"unexpected answers: {first.status_code} {second.status_code}")
        return {"first": first_s, "second": second_s, "status_max": max(waits), "formats": len(first.json())}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_ready(base: str, auth: dict, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(f"{base}/api/status", headers=auth, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("the Jupyter server did not start")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side, interleaved (default 3)")
    args = ap.parse_args()
    print(f"load average before: {_load()}")
    runs: dict[str, list[dict]] = {"Jupyter Server": [], "coursehub": []}
    with tempfile.TemporaryDirectory(prefix="bench-nbconvert-") as tmp:
        for _ in range(args.repeat):
            for name, on in (("Jupyter Server", False), ("coursehub", True)):
                r = one_run(on, Path(tmp))
                runs[name].append(r)
                print(f"  {name:14s}: first {r['first']:.2f} s, second {r['second'] * 1000:7.1f} ms, "
                      f"/api/status meanwhile at most {r['status_max'] * 1000:5.1f} ms ({r['formats']} formats)",
                      flush=True)
    print("summary (min / median):")
    for name, rs in runs.items():
        for key in ("first", "second", "status_max"):
            xs = [r[key] for r in rs]
            print(f"  {name:14s} {key:10s}: {min(xs):.3f} / {statistics.median(xs):.3f} s")
    ratio = (statistics.median(r["second"] for r in runs["Jupyter Server"])
             / statistics.median(r["second"] for r in runs["coursehub"]))
    print(f"a later page's request: {ratio:.0f}x faster with the extension; load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
