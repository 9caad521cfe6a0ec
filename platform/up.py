"""`coursehub up`: run the whole platform on this machine with its embedded defaults.

It validates the settings and courses first (so mistakes show as file/key messages, not hub
tracebacks), writes the effective settings into the state folder, and runs JupyterHub, which
starts the proxy and the coursehub services. Ctrl-C, SIGTERM or SIGHUP stop them all: the hub gets
`COURSEHUB_STOP_GRACE` seconds (30) to stop what it started, then whatever is left of the process
tree is killed (`up` is a child subreaper, so even detached processes come back to it). The state
folder keeps users, servers' homes and grades for the next run; one `up` at a time may use it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from . import isolation, ports, proctree
from .courses import load_catalog
from .errors import ConfigError, Problem
from .settings import Settings, load_settings

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
#: Public ports tried, in order, when the hub's port is not chosen (`--port` or the settings file).
DEFAULT_PORTS = range(8000, 8100)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="public port of the hub (default 8000, or the next free one)")
    p.add_argument("--state-dir", type=Path, help="where users, homes and grades are kept (default .coursehub/)")
    p.add_argument("--settings", type=Path, help="platform settings file (default: built-in local settings)")
    p.add_argument("--no-build-envs", action="store_true",
                   help="do not build course environments at start (their servers use the platform's "
                   "environment until `coursehub env build COURSE`)")


def prepare(args: argparse.Namespace) -> Settings:
    """Load, override and validate; write the effective settings for the hub process to read."""
    settings = load_settings(args.settings, state_dir=args.state_dir)
    if not settings.local:
        raise ConfigError([Problem(settings.source, "mode", "`coursehub up` runs the local platform (mode: local)")])
    choose_ports(settings, args.port)
    load_catalog(settings.courses_dir)
    if "build_at_start" not in settings.textbook.model_fields_set:
        settings.textbook.build_at_start = True  # a newcomer's first look at the book should not wait
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    effective = settings.state_dir / "settings.effective.yaml"
    data = json.loads(settings.model_dump_json())
    effective.write_text("# Written by `coursehub up`; edit your settings file instead.\n" + yaml.safe_dump(data))
    effective.chmod(0o600)  # may hold database URLs with passwords
    return settings.model_copy(update={"source": effective})


def choose_ports(settings: Settings, cli_port: int | None) -> None:
    """Ports nobody chose are picked free (ports.py; so two platforms run side by side); a chosen port
    that is taken is a clear error naming where it was chosen."""
    where = settings.source
    if cli_port:
        settings.hub.port = cli_port
        _require_free(settings.hub.ip, cli_port, Path("command line"), "--port", "the hub")
    elif "port" in settings.hub.model_fields_set:
        _require_free(settings.hub.ip, settings.hub.port, where, "hub.port", "the hub")
    elif ports.configured_band() is not None:
        settings.hub.port = ports.free_port(settings.hub.ip)
    else:
        settings.hub.port = next((p for p in DEFAULT_PORTS if ports.is_free(settings.hub.ip, p)), 0) \
            or ports.free_port(settings.hub.ip)
    for key, port in (("hub.hub_port", settings.hub.hub_port), ("hub.proxy_api_port", settings.hub.proxy_api_port)):
        if port:
            _require_free("127.0.0.1", port, where, key, "an internal endpoint")
    if "port" in settings.grading.model_fields_set:
        _require_free("127.0.0.1", settings.grading.port, where, "grading.port", "the grading service")
    else:
        settings.grading.port = ports.free_port()


def _require_free(ip: str, port: int, file: Path | None, key: str, what: str) -> None:
    if not ports.is_free(ip, port):
        raise ConfigError([Problem(file, key, f"port {port} (for {what}) is already in use; choose "
                                   "another, or leave it unset to use a free one")])


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


def banner(settings: Settings, version: str, mode: str = "none") -> str:
    url = settings.public_url()
    lines = [
        "",
        f"  coursehub is running (JupyterHub {version}) at {url}/",
        f"  state folder: {settings.state_dir}",
        f"  isolation: {isolation.describe(mode)}",
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
    lock = isolation.lock_state_dir(settings.state_dir)
    if lock is None:
        print(f"error: another `coursehub up` is using the state folder {settings.state_dir}; stop it, or "
              "give this one its own folder with --state-dir", file=sys.stderr)
        return 1
    if not args.no_build_envs:
        build_environments(settings)
    mode = isolation.choose_mode()
    if mode == "users":
        isolation.harden_state_dir(settings.state_dir)
    os.umask(0o007)  # what the hub and its services write is theirs (and a course's staff group's)
    print(f"coursehub: isolation of user servers: {isolation.describe(mode)}", file=sys.stderr, flush=True)
    proctree.become_subreaper()
    env = {**os.environ, "COURSEHUB_SETTINGS": str(settings.source), isolation.MODE_ENV: mode}
    cmd = [sys.executable, "-m", "coursehub.platform.run_hub", "-f", str(CONFIG_FILE)]
    # The hub runs in its own session so that one Ctrl-C reaches it once, through us; a terminal
    # closing (SIGHUP) or a process manager (SIGTERM) must stop it the same way, never orphan it.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    proc = subprocess.Popen(cmd, cwd=settings.state_dir, env=env, start_new_session=True,
                            preexec_fn=proctree.terminate_with_parent)
    try:
        version = wait_for_hub(settings.public_url(), proc)
        if version is None:
            print("error: the hub did not start; see the log above", file=sys.stderr)
            stop(proc)
            return 1
        print(banner(settings, version, mode), flush=True)
        code = proctree.wait(proc)
        stop(proc)  # the hub exited by itself: what it left behind goes too
        return code
    except KeyboardInterrupt:
        print("\nstopping coursehub ...", file=sys.stderr, flush=True)
        return stop(proc)


def build_environments(settings: Settings) -> None:
    """Build (or reuse) each course's environment from its lock, so its servers and the autograder
    run the course's packages; a course whose build fails runs in the platform's environment."""
    from .environments_build import EnvBuildError, build_course

    for course in load_catalog(settings.courses_dir):
        try:
            python = build_course(settings, course.id, progress=sys.stderr.isatty(),
                                  warn=lambda w: print(f"coursehub: {w}", file=sys.stderr))
        except (EnvBuildError, ConfigError) as e:
            print(f"coursehub: warning: the environment of {course.id} was not built ({e}); its servers use "
                  "the platform's environment", file=sys.stderr, flush=True)
            continue
        if python is not None:
            print(f"coursehub: environment of {course.id}: {python.parent.parent}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_grace() -> float:
    try:
        return max(0.0, float(os.environ.get("COURSEHUB_STOP_GRACE", "30")))
    except ValueError:
        return 30.0


def stop(proc: subprocess.Popen, timeout: float | None = None) -> int:
    """SIGINT lets JupyterHub stop user servers, services and the proxy; whatever of our process tree
    is still there after the grace period (a hung hub, a server that ignores signals) is killed."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up itself
    timeout = stop_grace() if timeout is None else timeout
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"coursehub: the hub did not stop within {timeout:g} s; stopping what is left",
                  file=sys.stderr, flush=True)
    left = proctree.kill_descendants(term_wait=5)
    if left:
        print(f"coursehub: stopped {left} process(es) the hub left behind", file=sys.stderr, flush=True)
    proc.wait()
    return 0
