"""`coursehub up` stops everything it started, always; two platforms run side by side by default."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from support.accounts import random_prefix, remove_accounts
from support.hub import stop_process_tree
from support.net import wait_until

from coursehub.paths import SOURCE_ROOT
from coursehub.platform import isolation

pytestmark = pytest.mark.hubcompat


@pytest.fixture
def env(monkeypatch):
    """The environment of `up`: a test-only account prefix (users mode as root), removed afterwards."""
    prefix = random_prefix()
    e = {**os.environ, "PYTHONUNBUFFERED": "1", isolation.PREFIX_ENV: prefix,
         "PATH": f"{SOURCE_ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    yield e
    remove_accounts(prefix)


def start_up(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "coursehub.cli", "up", "--no-build-envs", *args],
                                cwd=SOURCE_ROOT, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)


def running_url(log: Path, proc: subprocess.Popen, timeout: float = 180) -> str:
    def url() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"coursehub up exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        m = re.search(r"coursehub is running \(JupyterHub [^)]*\) at (http://\S+)/", log.read_text())
        return m[1] if m else None

    return wait_until(url, timeout=timeout, interval=0.5, what="coursehub up")


def tree(pid: int) -> list[psutil.Process]:
    return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(cmdline(p)[:120])
        except psutil.NoSuchProcess:
            pass
    return out


def sign_in_and_spawn(url: str, name: str) -> None:
    s = requests.Session()
    s.get(f"{url}/hub/login", timeout=30)
    s.post(f"{url}/hub/login", data={"username": name, "_xsrf": s.cookies.get("_xsrf")}, timeout=60)
    s.get(f"{url}/hub/spawn?course=demo-101", timeout=120)
    wait_until(lambda: "JupyterLab" in s.get(f"{url}/user/{name}/lab", timeout=30).text,
               timeout=180, what="the user server")


def test_a_hung_hub_still_leaves_no_process_behind_and_up_runs_again(tmp_path, env):
    settings = tmp_path / "coursehub.yaml"
    settings.write_text(yaml.safe_dump({"auth": {"dev_login": True}}))
    args = ["--state-dir", str(tmp_path / "state"), "--settings", str(settings)]
    proc = start_up(args, tmp_path / "up1.log", {**env, "COURSEHUB_STOP_GRACE": "3"})
    try:
        url = running_url(tmp_path / "up1.log", proc)
        sign_in_and_spawn(url, "dana")
        procs = tree(proc.pid)
        cmdlines = " ".join(cmdline(p) for p in procs)
        for part in ("configurable-http-proxy", "coursehub.grading.service", "jupyterhub-singleuser"):
            assert part in cmdlines, part
        hub = next(p for p in procs if "-m coursehub.platform.run_hub -f" in cmdline(p))
        hub.send_signal(signal.SIGSTOP)  # a hub that never finishes its clean-up
        proc.send_signal(signal.SIGTERM)  # a process manager stops `coursehub up`
        proc.wait(120)
        wait_until(lambda: not alive(procs), timeout=30, what="every process of coursehub up to stop")
        log = (tmp_path / "up1.log").read_text()
        assert "did not stop within 3 s" in log
        assert "isolation of user servers:" in log and "  isolation: " in log  # said at start and in the banner
        if os.geteuid() == 0 and isolation.bwrap_works():
            assert "isolation: per-user system accounts" in log
    finally:
        stop_process_tree(proc)

    port = url.rsplit(":", 1)[1]
    proc = start_up([*args, "--port", port], tmp_path / "up2.log", env)  # the same port works again
    try:
        assert running_url(tmp_path / "up2.log", proc) == url
        procs = tree(proc.pid)
        proc.send_signal(signal.SIGHUP)  # the terminal closes
        proc.wait(120)
        wait_until(lambda: not alive(procs), timeout=30, what="every process to stop after SIGHUP")
    finally:
        stop_process_tree(proc)


def test_two_platforms_side_by_side_with_default_settings(tmp_path, env):
    env = {k: v for k, v in env.items() if k not in ("COURSEHUB_SETTINGS", "COURSEHUB_STATE_DIR")}
    first = start_up(["--state-dir", str(tmp_path / "a")], tmp_path / "a.log", env)
    second = None
    try:
        url_a = running_url(tmp_path / "a.log", first)
        second = start_up(["--state-dir", str(tmp_path / "b")], tmp_path / "b.log", env)
        url_b = running_url(tmp_path / "b.log", second)
        assert url_a != url_b
        for url in (url_a, url_b):  # each one's grading service answers through its own proxy
            r = requests.get(f"{url}/services/grading/", timeout=30, allow_redirects=False)
            assert r.status_code in (200, 302), (url, r.status_code)
        a_settings = yaml.safe_load((tmp_path / "a" / "settings.effective.yaml").read_text())
        b_settings = yaml.safe_load((tmp_path / "b" / "settings.effective.yaml").read_text())
        assert a_settings["grading"]["port"] != b_settings["grading"]["port"]

        # The same state folder twice, or a port that is taken, is a clear one-line error.
        r = subprocess.run([sys.executable, "-m", "coursehub.cli", "up", "--state-dir", str(tmp_path / "a")],
                           capture_output=True, text=True, env=env, timeout=120, cwd=SOURCE_ROOT)
        assert r.returncode == 1 and "another `coursehub up` is using the state folder" in r.stderr
        r = subprocess.run([sys.executable, "-m", "coursehub.cli", "up", "--state-dir", str(tmp_path / "c"),
                            "--port", url_a.rsplit(":", 1)[1]], capture_output=True, text=True, env=env,
                           timeout=120, cwd=SOURCE_ROOT)
        assert r.returncode == 1 and "is already in use" in r.stderr and "Traceback" not in r.stderr
    finally:
        for p in (first, second):
            if p is not None:
                p.send_signal(signal.SIGINT)
        for p in (first, second):
            if p is not None:
                try:
                    p.wait(90)
                except subprocess.TimeoutExpired:
                    pass
                stop_process_tree(p)

