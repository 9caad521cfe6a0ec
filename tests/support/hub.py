"""A real coursehub JupyterHub on free loopback ports, for integration tests.

    with running_hub(tmp_path, settings={"auth": {"dev_login": True}}) as hub:
        session = hub.login("alice")
        hub.start_server("alice", course="demo-101")

The hub runs our real `jupyterhub_config.py`; the only test addition is an admin service token
(`hub.token`) so tests can use the REST API. Stopping the hub checks that no process is left.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.up import CONFIG_FILE

from .net import free_port, wait_until

TEST_CONFIG = """
exec(compile(open({config!r}).read(), {config!r}, "exec"))
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["test-admin"]}})
"""


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@dataclass
class Hub:
    url: str
    token: str
    settings_file: Path
    state_dir: Path
    log_file: Path
    proc: subprocess.Popen
    settings: dict = field(default_factory=dict)

    # --- REST API as the test-admin service -----------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)

    def user(self, name: str) -> dict:
        r = self.api("GET", f"/users/{name}")
        r.raise_for_status()
        return r.json()

    def start_server(self, name: str, course: str | None = None, timeout: float = 120) -> str:
        """Start `name`'s default server (creating the user) and return its URL once it answers."""
        if self.api("GET", f"/users/{name}").status_code == 404:
            self.api("POST", f"/users/{name}").raise_for_status()
        body = {"course": course} if course else {}
        r = self.api("POST", f"/users/{name}/server", json=body)
        if r.status_code not in (201, 202, 400):
            r.raise_for_status()

        def ready() -> bool:
            server = self.user(name).get("servers", {}).get("", {})
            return bool(server.get("ready"))

        wait_until(ready, timeout=timeout, what=f"server of {name}")
        return f"{self.url}/user/{name}/"

    def stop_server(self, name: str, timeout: float = 60) -> None:
        self.api("DELETE", f"/users/{name}/server")
        wait_until(lambda: "" not in self.user(name).get("servers", {}), timeout=timeout, what="server stop")

    def user_token(self, name: str, scopes: list[str] | None = None) -> str:
        body = {"note": "test"} | ({"scopes": scopes} if scopes else {})
        r = self.api("POST", f"/users/{name}/tokens", json=body)
        r.raise_for_status()
        return r.json()["token"]

    # --- browser-like sign-in ---------------------------------------------------------------
    def login(self, name: str) -> requests.Session:
        """Sign in through the development login form, as a browser would."""
        s = requests.Session()
        r = s.get(f"{self.url}/hub/login", timeout=30)
        r.raise_for_status()
        xsrf = s.cookies.get("_xsrf", "")
        r = s.post(f"{self.url}/hub/login", data={"username": name, "password": "", "_xsrf": xsrf},
                   timeout=60, allow_redirects=False)
        if r.status_code not in (302, 303):
            raise AssertionError(f"login of {name} failed: HTTP {r.status_code}")
        return s

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def hub_settings(tmp_path: Path, extra: dict | None = None) -> dict:
    base = {
        "mode": "local",
        "state_dir": str(tmp_path / "state"),
        "hub": {
            "ip": "127.0.0.1",
            "port": free_port(),
            "hub_port": free_port(),
            "proxy_api_port": free_port(),
            "start_timeout": 120,
        },
        "spawner": {"idle_timeout": 0},
        "grading": {"port": free_port()},
        "auth": {"dev_login": True},
    }
    if SOURCE_ROOT is not None:
        base["courses_dir"] = str(SOURCE_ROOT / "courses")
    return deep_merge(base, extra or {})


@contextmanager
def running_hub(tmp_path: Path, settings: dict | None = None, timeout: float = 90) -> Iterator[Hub]:
    data = hub_settings(tmp_path, settings)
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump(data))
    state = Path(data["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    config = tmp_path / "jupyterhub_test_config.py"
    config.write_text(TEST_CONFIG.format(config=str(CONFIG_FILE), token=token))
    log_file = tmp_path / "hub.log"
    env = {**os.environ, "COURSEHUB_SETTINGS": str(settings_file)}
    url = f"http://127.0.0.1:{data['hub']['port']}"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coursehub.platform.run_hub", "-f", str(config)],
            cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    hub = Hub(url, token, settings_file, state, log_file, proc, data)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"hub exited with {proc.returncode}:\n{hub.log()[-4000:]}")
            return requests.get(f"{url}/hub/api", timeout=2).ok

        try:
            wait_until(up, timeout=timeout, what="hub")
        except (TimeoutError, RuntimeError) as e:
            raise RuntimeError(f"{e}\n--- hub log ---\n{hub.log()[-4000:]}") from None
        try:
            yield hub
        except BaseException:
            print(f"--- hub log (tail) ---\n{hub.log()[-6000:]}")  # shown by pytest on failure
            raise
    finally:
        stop_process_tree(proc)


def stop_process_tree(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGINT the hub (it stops servers, services and proxy), then make sure nothing is left."""
    try:
        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = [proc.pid]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in tree):
        time.sleep(0.2)
    leftovers = [p for p in tree if psutil.pid_exists(p) and _alive(p)]
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    if leftovers:
        raise AssertionError(f"processes left behind after the hub stopped: {leftovers}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
