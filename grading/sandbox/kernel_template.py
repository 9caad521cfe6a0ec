"""The worker's side of the kernel template (template.py): start it, ask it to fork a zygote into a sandbox.

One template per worker process, shared by its sandbox slots, started on first use and again if it
ever dies. `coursehub autograde` starts one ahead (`prestart`), before its own imports, for the
first worker forked from it to take over: its imports then run beside the parent's on the other
core instead of after the fork, on the way to the first kernel. It is used only where it can join a
sandbox (the worker runs as root) and only for coursehub's own environment (a course environment's
Python starts its zygote in each sandbox, as the template would otherwise run that environment's
imports as root). `COURSEHUB_SANDBOX_TEMPLATE=0` turns it off: every sandbox then starts a new
interpreter for its zygote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("template.py")
ENV = "COURSEHUB_SANDBOX_TEMPLATE"


class TemplateError(RuntimeError):
    """The template could not start or could not put a zygote into the sandbox."""


#: why the template was given up in this process (None: it was not)
_disabled: str | None = None


def wanted(privileged: bool, own_runtime: bool) -> bool:
    """Should a sandbox's zygote come from the template here (see the module's docstring)?"""
    return privileged and own_runtime and os.environ.get(ENV, "1") != "0" and _disabled is None


def disable(reason: str) -> None:
    """Give the template up for the rest of this process (it could not join a sandbox here, e.g.
    where a seccomp profile forbids setns): every sandbox then starts its own zygote."""
    global _disabled
    if _disabled is None:
        log.warning("kernel template given up, each sandbox starts its own zygote from now on: %s", reason)
    _disabled = reason


class KernelTemplate:
    """A running template process and its control socket."""

    def __init__(self, popen: Callable[..., subprocess.Popen]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # An empty environment: a forked zygote can read its template's initial environment
            # in /proc/self/environ, so nothing of the worker's (tokens, database URLs) is in it.
            self.proc = popen([sys.executable, "-s", str(TEMPLATE)], stdin=theirs.fileno(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                              start_new_session=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                              cwd="/")
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.control = ours
        self._lines = ours.makefile("rb")
        self._lock = threading.Lock()
        self._ready = False
        self.owner = os.getpid()  # the process that started it (a worker that took it over cannot wait for it)

    def _reply(self, timeout: float) -> dict:
        self.control.settimeout(timeout)
        try:
            line = self._lines.readline()
        except OSError as e:
            raise TemplateError(f"the kernel template did not answer ({e})") from e
        if not line:
            raise TemplateError(f"the kernel template exited (status {self.proc.poll()})")
        return json.loads(line)

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the template has done its imports and listens."""
        with self._lock:
            self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        if not self._ready:
            if self._reply(timeout).get("op") != "ready":
                raise TemplateError("the kernel template did not start")
            self._ready = True

    def alive(self) -> bool:
        if os.getpid() == self.owner:
            return self.proc.poll() is None
        try:  # taken over from the process that started it: gone when its end of the socket is
            if not select.select([self.control], [], [], 0)[0]:
                return True
            return self.control.recv(1, socket.MSG_PEEK) != b""  # readable: answers at once
        except (OSError, ValueError):
            return False

    def enter(self, pid: int, uid: int, cgroup_procs: list[str], env: dict[str, str], workspace: str,
              timeout: float = 120) -> socket.socket:
        """Fork a zygote into the sandbox whose placeholder has host pid `pid`. Returns the host's
        end of the zygote's channel (the zygote says "ready" on it once it is listening)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        req = {"op": "enter", "pid": pid, "uid": uid, "cgroup": cgroup_procs, "env": env, "workspace": workspace}
        try:
            with self._lock:
                self._wait_ready(timeout)
                try:
                    socket.send_fds(self.control, [(json.dumps(req) + "\n").encode()], [theirs.fileno()])
                except OSError as e:
                    raise TemplateError(f"the kernel template is unreachable ({e})") from e
                reply = self._reply(timeout)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if reply.get("op") != "entered" or reply.get("status") != 0:
            ours.close()
            raise TemplateError(f"the kernel template could not join the sandbox ({reply})")
        return ours

    def drop_socket(self) -> None:
        """This process's end of the control socket, closed (its reader holds the descriptor too)."""
        self._lines.close()
        self.control.close()

    def close(self) -> None:
        self.drop_socket()
        if os.getpid() != self.owner:  # the starter reaps it (`reap_prestarted`)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


_current: tuple[int, KernelTemplate] | None = None
_current_lock = threading.Lock()


def template(popen: Callable[..., subprocess.Popen]) -> KernelTemplate:
    """This process's template (a new one after a fork, or if the last one died); the first worker
    forked from a process that prestarted one takes that one over."""
    global _current
    with _current_lock:
        if _current is None or _current[0] != os.getpid() or not _current[1].alive():
            if _current is not None and _current[0] == os.getpid():
                _current[1].close()  # it died: reap it
            _current = (os.getpid(), _take_prestarted() or KernelTemplate(popen))
        return _current[1]


#: a template started ahead: (the starting process's pid, the template, the read end of a pipe
#: holding one byte: the process that reads it takes the template over)
_prestarted: tuple[int, KernelTemplate, int] | None = None


def prestart(popen: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
    """Start a template now, for the first process forked from this one that wants one (see the
    module's docstring). Only as root and unless turned off; a failure here only means the worker
    starts its own, as without this."""
    global _prestarted
    if _prestarted is not None or not wanted(os.geteuid() == 0, True):
        return
    try:
        claim, token = os.pipe()
        os.write(token, b"1")
        os.close(token)
        os.set_blocking(claim, False)
        try:
            _prestarted = (os.getpid(), KernelTemplate(popen), claim)
        except BaseException:
            os.close(claim)
            raise
    except OSError as e:
        log.info("no kernel template started ahead: %s", e)


def _take_prestarted() -> KernelTemplate | None:
    """In a process forked after `prestart`: the template, if this process is the first to ask."""
    global _prestarted
    if _prestarted is None or _prestarted[0] == os.getpid():
        return None
    _, started, claim = _prestarted
    _prestarted = None
    try:
        taken = os.read(claim, 1) == b"1"
    except BlockingIOError:
        taken = False
    finally:
        os.close(claim)
    if taken:
        return started
    started.drop_socket()  # another worker's: this process's copy of its socket goes
    return None


def release_prestarted(discard: bool = False) -> None:
    """In the process that called `prestart`, once its workers are forked: its own copies of the
    template's socket and pipe go (a worker has it now, or the template ends when the last copy is
    closed); `discard`: nobody will use it (e.g. a course environment's Python grades): stop it."""
    global _prestarted
    if _prestarted is None or _prestarted[0] != os.getpid():
        return
    _, started, claim = _prestarted
    _prestarted = None
    os.close(claim)
    started.drop_socket()
    if discard:
        started.proc.kill()
    _released.append(started.proc)


_released: list[subprocess.Popen] = []


def reap_prestarted(timeout: float = 5) -> None:
    """At the end of the run: wait for a released template to end (its workers are gone), else stop it."""
    while _released:
        proc = _released.pop()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
