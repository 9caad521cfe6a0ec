"""One sandbox slot: a bubblewrap sandbox running the kernel zygote, driven over a pipe.

A slot hands out one fresh kernel at a time (`spawn`), can pre-start the next one while the host
scores the previous notebook, and kills everything the kernel started (`reset`). If the zygote
itself dies (a student cannot reach it, but a host OOM kill can), the slot restarts the sandbox.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .bwrap import RUN_DIR, WORKSPACE, SandboxSpec, privileged, sandbox_command
from .limits import Limits

log = logging.getLogger(__name__)

#: Host uids for slots when the worker runs as root: BASE_UID + slot number.
BASE_UID = 61000


class SandboxError(RuntimeError):
    """The sandbox could not be started or stopped responding."""


@dataclass
class KernelInfo:
    """A kernel forked in the slot: host-side connection info and the pid inside the sandbox."""

    pid: int
    connection: dict
    started: float


class SandboxSlot:
    def __init__(self, slot: int = 0, limits: Limits | None = None, base_dir: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.slot = slot
        self.limits = limits or Limits()
        self.uid = BASE_UID + slot
        self.extra_env = extra_env or {}
        self.root = Path(tempfile.mkdtemp(prefix=f"coursehub-sandbox-{slot}-", dir=base_dir))
        if len(str(self.root)) > 60:  # unix socket paths (run/<id>-<n>) must stay under 108 bytes
            os.rmdir(self.root)
            self.root = Path(tempfile.mkdtemp(prefix=f"coursehub-sandbox-{slot}-", dir="/tmp"))
        os.chmod(self.root, 0o700)
        self.workspace = self.root / "work"
        self.run_dir = self.root / "run"
        self.proc: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._exited: dict[int, int] = {}
        self.kernel: KernelInfo | None = None
        self.restarts = 0

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for d in (self.workspace, self.run_dir):
            d.mkdir(exist_ok=True)
            if privileged():
                os.chown(d, self.uid, self.uid)
            os.chmod(d, 0o700)
        spec = SandboxSpec(workspace=self.workspace, run_dir=self.run_dir, uid=self.uid,
                           tmp_bytes=self.limits.tmp_bytes)
        self.proc = subprocess.Popen(
            sandbox_command(spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True,
        )
        self._events = queue.Queue()
        self._exited = {}
        threading.Thread(target=self._read, args=(self.proc, self._events), daemon=True,
                         name=f"sandbox-slot-{self.slot}").start()
        ev = self._wait_for("ready", timeout=30)
        log.debug("sandbox slot %s ready (zygote pid %s)", self.slot, ev["pid"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.kernel = None
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Throw the whole sandbox away (kills everything in it) and start a new one."""
        self.restarts += 1
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.kernel = None
        for d in (self.workspace, self.run_dir):
            shutil.rmtree(d, ignore_errors=True)
        self.start()

    def __enter__(self) -> SandboxSlot:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- kernels ----------------------------------------------------------------------------------
    def spawn(self, env: dict[str, str] | None = None, argv: list[str] | None = None,
              fresh: bool = True) -> KernelInfo:
        """Fork a kernel. With `fresh` (a new submission), first kill everything that ran in the
        sandbox and wipe the workspace, /tmp and /dev/shm. Returns as soon as the process exists;
        the kernel finishes starting in the background (clients wait for it), which is what lets
        a worker pre-start the kernels of its next submission."""
        if not self.alive():
            self.restart()
            fresh = True
        name = uuid.uuid4().hex[:8]
        key = secrets.token_hex(16)
        inside = {"transport": "ipc", "ip": f"{RUN_DIR}/{name}", "key": key, "signature_scheme": "hmac-sha256",
                  "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
                  "kernel_name": "python3"}
        if fresh:
            for stale in self.run_dir.iterdir():
                stale.unlink(missing_ok=True)
        conn_file = self.run_dir / f"{name}.json"
        conn_file.write_text(json.dumps(inside))
        if privileged():
            os.chown(conn_file, self.uid, self.uid)
        kernel_env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": "/tmp", "IPYTHONDIR": "/tmp/.ipython", "MPLCONFIGDIR": "/tmp/.matplotlib",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter",
            **self.extra_env, **(env or {}),
        }
        req = {"op": "spawn", "connection_file": f"{RUN_DIR}/{name}.json", "argv": argv or [],
               "env": kernel_env, "cwd": WORKSPACE, "limits": self.limits.rlimits(), "fresh": fresh}
        try:
            ev = self._request(req, "spawned", timeout=30)
        except SandboxError:
            self.restart()
            return self.spawn(env, argv, fresh=True)
        outside = dict(inside, ip=str(self.run_dir / name))
        self.kernel = KernelInfo(pid=ev["pid"], connection=outside, started=time.monotonic())
        return self.kernel

    def kill(self, kernel: KernelInfo) -> None:
        """Kill one kernel and the processes in its group (the rest of the sandbox stays)."""
        if self.alive() and self.kernel_alive(kernel.pid):
            try:
                self._request({"op": "kill", "pid": kernel.pid}, "killed", timeout=10)
            except SandboxError:
                self.restart()

    def kernel_alive(self, pid: int | None = None) -> bool:
        pid = pid if pid is not None else (self.kernel.pid if self.kernel else None)
        if pid is None or not self.alive():
            return False
        self._drain()
        return pid not in self._exited

    def exit_status(self, pid: int) -> int | None:
        self._drain()
        return self._exited.get(pid)

    def reset(self, timeout: float = 10) -> None:
        """Kill the kernel and every process it started; wipe the writable places."""
        self.kernel = None
        if not self.alive():
            self.restart()
            return
        try:
            self._request({"op": "reset"}, "reset", timeout=timeout)
        except SandboxError:
            self.restart()

    # -- pipe -------------------------------------------------------------------------------------
    @staticmethod
    def _read(proc: subprocess.Popen, events: queue.Queue) -> None:
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                continue
        events.put({"op": "eof"})

    def _drain(self) -> None:
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                return
            self._note(ev)

    def _note(self, ev: dict) -> None:
        if ev.get("op") == "exit":
            self._exited[ev["pid"]] = ev["status"]

    def _wait_for(self, op: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(f"sandbox slot {self.slot}: no {op!r} from the zygote within {timeout:.0f}s")
            try:
                ev = self._events.get(timeout=left)
            except queue.Empty:
                continue
            self._note(ev)
            if ev.get("op") == op:
                return ev
            if ev.get("op") == "error":
                raise SandboxError(f"sandbox slot {self.slot}: {ev.get('error')}")
            if ev.get("op") == "eof":
                raise SandboxError(f"sandbox slot {self.slot}: the sandbox exited (bwrap status {self.proc.poll()})")

    def _request(self, req: dict, op: str, timeout: float) -> dict:
        if self.proc is None or self.proc.stdin is None:
            raise SandboxError(f"sandbox slot {self.slot} is not running")
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise SandboxError(f"sandbox slot {self.slot}: zygote unreachable ({e})") from e
        return self._wait_for(op, timeout)
