"""`coursehub up`: run the whole platform on this machine with its embedded defaults.

It validates the settings and courses first (so mistakes show as file/key messages, not hub
tracebacks), writes the effective settings into the state folder, and runs JupyterHub, which
starts the proxy and the coursehub services. Ctrl-C stops them all; the state folder keeps users,
servers' homes and grades for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from .courses import load_catalog
from .errors import ConfigError
from .settings import Settings, load_settings

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="public port of the hub (default 8000)")
    p.add_argument("--state-dir", type=Path, help="where users, homes and grades are kept (default .coursehub/)")
    p.add_argument("--settings", type=Path, help="platform settings file (default: built-in local settings)")


def prepare(args: argparse.Namespace) -> Settings:
    """Load, override and validate; write the effective settings for the hub process to read."""
    settings = load_settings(args.settings, state_dir=args.state_dir)
    if args.port:
        settings.hub.port = args.port
    if not settings.local:
        from .errors import Problem

        raise ConfigError([Problem(settings.source, "mode", "`coursehub up` runs the local platform (mode: local)")])
    load_catalog(settings.courses_dir)
    if "build_at_start" not in settings.textbook.model_fields_set:
        settings.textbook.build_at_start = True  # a newcomer's first look at the book should not wait
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    effective = settings.state_dir / "settings.effective.yaml"
    data = json.loads(settings.model_dump_json())
    effective.write_text("# Written by `coursehub up`; edit your settings file instead.\n" + yaml.safe_dump(data))
    return settings.model_copy(update={"source": effective})


def port_free(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the hub binds; ignores TIME_WAIT
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def wait_for_hub(url: str, proc: subprocess.Popen, timeout: float = 90) -> str | None:
    """The hub's version once `GET /hub/api` answers, or None if it died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/hub/api", timeout=2) as r:
                return json.load(r).get("version")
        except OSError:
            time.sleep(0.3)
    return None


def banner(settings: Settings, version: str) -> str:
    url = settings.public_url()
    lines = [
        "",
        f"  coursehub is running (JupyterHub {version}) at {url}/",
        f"  state folder: {settings.state_dir}",
    ]
    if settings.auth.lti.local_lms and not settings.auth.dev_login:
        lines.append(f"  sign in: open {url}/hub/lms and launch an assignment as a student or an instructor")
    elif settings.auth.dev_login:
        lines.append(f"  sign in: open {url}/hub/login and type any name (no password; local only)")
    lines += ["  stop: Ctrl-C (run again to resume with the same users and work)", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        settings = prepare(args)
    except ConfigError as e:
        for p in e.problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    for name, port in (("hub", settings.hub.port), ("hub API", settings.hub.hub_port),
                       ("proxy API", settings.hub.proxy_api_port)):
        if port and not port_free(settings.hub.ip if name == "hub" else "127.0.0.1", port):
            print(f"error: port {port} ({name}) is already in use; choose another with --port "
                  "or the settings file", file=sys.stderr)
            return 1
    env = {**os.environ, "COURSEHUB_SETTINGS": str(settings.source)}
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)]
    proc = subprocess.Popen(cmd, cwd=settings.state_dir, env=env, start_new_session=True)
    # The hub runs in its own session so that one Ctrl-C reaches it once, through us; a terminal
    # closing (SIGHUP) or a process manager (SIGTERM) must stop it the same way, never orphan it.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        version = wait_for_hub(settings.public_url(), proc)
        if version is None:
            print("error: the hub did not start; see the log above", file=sys.stderr)
            stop(proc)
            return 1
        print(banner(settings, version), flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        print("\nstopping coursehub ...", file=sys.stderr)
        return stop(proc)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGINT lets JupyterHub stop user servers, services and the proxy; SIGKILL the group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return 0
