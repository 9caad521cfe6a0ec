"""`./scripts/up` as a newcomer runs it: starts, answers, stops on Ctrl-C, resumes its state."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess

import psutil
import requests
import yaml
from support.hub import stop_process_tree
from support.net import free_port, wait_until

from coursehub.paths import SOURCE_ROOT


def start_up(args: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SOURCE_ROOT / "scripts" / "up"), *args], cwd=SOURCE_ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def ctrl_c(proc: subprocess.Popen) -> list[int]:
    """Send SIGINT to the whole foreground group, as a terminal does; return the pids that were running."""
    pids = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(60)
    return pids


def test_up_serves_api_stops_on_ctrl_c_and_resumes(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    settings = tmp_path / "coursehub.yaml"
    settings.write_text(yaml.safe_dump({"auth": {"dev_login": True}, "spawner": {"idle_timeout": 0}}))
    args = ["--port", str(port), "--state-dir", str(state), "--settings", str(settings)]
    url = f"http://127.0.0.1:{port}"

    log1 = open(tmp_path / "up1.log", "wb")
    proc = start_up(args, log1)
    try:
        version = wait_until(lambda: requests.get(f"{url}/hub/api", timeout=2).json()["version"], timeout=180,
                             what="coursehub up")
        assert version.split(".")[0] in {"5", "6"}
        wait_until(lambda: "coursehub is running" in (tmp_path / "up1.log").read_text(), timeout=30, what="banner")
        out = (tmp_path / "up1.log").read_text()
        assert f"{url}/" in out and "Ctrl-C" in out
        assert f"coursehub: environment of demo-101: {state / 'envs'}/demo-101-" in out  # built from its lock

        s = requests.Session()
        s.get(f"{url}/hub/login", timeout=10)
        r = s.post(f"{url}/hub/login", data={"username": "dana", "_xsrf": s.cookies.get("_xsrf")},
                   allow_redirects=False, timeout=30)
        assert r.status_code == 302
        pids = ctrl_c(proc)
    except BaseException:
        stop_process_tree(proc)
        print((tmp_path / "up1.log").read_text()[-5000:])
        raise
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert "stopping coursehub" in (tmp_path / "up1.log").read_text()

    # Again: same state folder, same users. This time a process manager stops it (SIGTERM to
    # `coursehub up` only): the hub it started must not be left running.
    log2 = open(tmp_path / "up2.log", "wb")
    proc = start_up(args, log2)
    try:
        wait_until(lambda: requests.get(f"{url}/hub/api", timeout=2).ok, timeout=120, what="second start")
        with sqlite3.connect(state / "jupyterhub.sqlite") as db:
            assert ("dana",) in db.execute("select name from users").fetchall()
        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) > 2  # coursehub up -> jupyterhub -> proxy, services
        proc.terminate()  # scripts/up exec's `coursehub up`: this is SIGTERM to it alone
        proc.wait(60)
        wait_until(lambda: not [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE],
                   timeout=30, what="every process to stop after SIGTERM")
    finally:
        stop_process_tree(proc)
