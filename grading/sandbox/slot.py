"""One sandbox slot: a bubblewrap sandbox per submission, running the kernel zygote, driven over a pipe.

A slot serves one submission per sandbox. Each submission gets:
- a new bubblewrap sandbox, so a new pid namespace: killing its init kills every process the
  submission started, detached (`setsid`, double fork) or not;
- a new workspace and socket folder (never a wiped, reused one); the old ones are renamed away and
  removed in the background, without recursion (`cleanup.py`);
- a new cgroup where the host has one (`cgroups.py`): memory and processes limited for the whole
  submission.
`teardown` proves the slot clean (no process left in the namespace, in the cgroup or, as root, with
the slot's uid anywhere on the host) before anything new starts; if it cannot, the slot is retired
(`SlotRetired`) and its uid is never handed out again by this process.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import cgroups, kernel_template, uids
from .bwrap import PLACEHOLDER, RUN_DIR, WORKSPACE, SandboxSpec, privileged, sandbox_command, zygote_env
from .cleanup import Discarder, sweep_stale_roots
from .limits import KernelLimits

log = logging.getLogger(__name__)

BASE_UID = uids.BASE_UID


class SandboxError(RuntimeError):
    """The sandbox could not be started or stopped responding (an infrastructure failure)."""


class TemplateFailed(SandboxError):
    """The kernel template could not put a zygote into a sandbox (nothing of a submission ran)."""


class SlotRetired(SandboxError):
    """The slot could not be proven clean; it is never used again."""


@dataclass
class KernelInfo:
    """A kernel forked in the slot: host-side connection info and the pid inside the sandbox."""

    pid: int
    connection: dict
    started: float
    #: the sandbox it lives in (pids restart from 1 in every new sandbox)
    generation: int = 0


def _pid_ns(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def processes_in_ns(inode: int) -> list[int]:
    """Host pids of every live process (zombies are dead) in the pid namespace with this inode."""
    return scan(inode, None)


def processes_of_uid(uid: int) -> list[int]:
    """Host pids of live processes (not zombies: those are dead, waiting to be reaped) of a uid."""
    return scan(None, uid)


def scan(inode: int | None, uid: int | None) -> list[int]:
    """Host pids of live processes (zombies are dead, waiting to be reaped) that are in the pid
    namespace with this inode or have this real or effective uid: one pass over /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                status = f.read()
        except OSError:
            continue
        state = status.partition("\nState:")[2].split(None, 1)[:1]
        if not state or state[0] in ("Z", "X"):
            continue
        uids = status.partition("\nUid:")[2].split(None, 2)[:2]
        if (uid is not None and str(uid) in uids) or (inode is not None and _pid_ns(int(name)) == inode):
            out.append(int(name))
    return out


_spawner: tuple[int, ThreadPoolExecutor] | None = None


def _popen(*args, **kw) -> subprocess.Popen:
    """Start the sandbox from one long-lived thread. bwrap's --die-with-parent (PR_SET_PDEATHSIG)
    fires when the *thread* that started it ends; slots are restarted from short-lived threads."""
    global _spawner
    if _spawner is None or _spawner[0] != os.getpid():  # none yet, or inherited through fork
        _spawner = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner"))
    return _spawner[1].submit(subprocess.Popen, *args, **kw).result()


class SandboxSlot:
    def __init__(self, slot: int = 0, limits: KernelLimits | None = None, base_dir: Path | None = None,
                 extra_env: dict[str, str] | None = None, python: Path | None = None,
                 runtime: list[Path] | None = None, data: list[tuple[Path, PurePosixPath]] | None = None) -> None:
        self.slot = slot
        self.limits = limits or KernelLimits()
        #: a course environment's python (and what it needs read-only); None: coursehub's own
        self.python = Path(python) if python is not None else None
        self.runtime = runtime
        self.data = list(data or [])
        self.lease = uids.acquire(preferred=slot)
        self.uid = self.lease.uid
        self.extra_env = extra_env or {}
        self.root = Path(tempfile.mkdtemp(prefix=f"coursehub-sandbox-{slot}-", dir=base_dir))
        if len(str(self.root)) > 60:  # unix socket paths (run/<id>-<n>) must stay under 108 bytes
            os.rmdir(self.root)
            self.root = Path(tempfile.mkdtemp(prefix=f"coursehub-sandbox-{slot}-", dir="/tmp"))
        os.chmod(self.root, 0o700)
        (self.root / "owner").write_text(f"{os.getpid()}\n")
        self.generation = 0
        self.gen_dir = self.root / "g0"
        self.proc: subprocess.Popen | None = None
        self.cgroup: cgroups.SubmissionCgroup | None = None
        self.ns_inode: int | None = None
        self.init_pid: int | None = None
        self.retired = False
        self._discarder = Discarder()
        sweep_stale_roots(self.root.parent, "coursehub-sandbox-", self._discarder)
        self._events: queue.Queue = queue.Queue()
        self._gone = threading.Event()
        self._tx = self._channel = None  # the zygote's channel: bwrap's stdin, or a socket (template)
        self._exited: dict[int, int] = {}
        self._lock = threading.Lock()
        self.kernel: KernelInfo | None = None
        self.restarts = 0

    @property
    def workspace(self) -> Path:
        return self.gen_dir / "work"

    @property
    def run_dir(self) -> Path:
        return self.gen_dir / "run"

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """A new sandbox (new pid namespace, new workspace, new cgroup) for the next submission."""
        if self.retired:
            raise SlotRetired(f"sandbox slot {self.slot} (uid {self.uid}) is retired")
        if self.proc is not None:
            raise SandboxError(f"sandbox slot {self.slot} is already running")
        self.generation += 1
        self.gen_dir = self.root / f"g{self.generation}"
        self.gen_dir.mkdir(mode=0o700)
        for d in (self.workspace, self.run_dir):
            d.mkdir()
            if privileged():
                os.chown(d, self.uid, self.uid)
            os.chmod(d, 0o700)
        backend = cgroups.detect()
        self.cgroup = None
        if backend is not None:
            self.cgroup = cgroups.SubmissionCgroup(
                backend, f"slot{self.uid}-g{self.generation}-{uuid.uuid4().hex[:6]}",
                self.limits.submission_memory_bytes(), self.limits.processes)
        spec = SandboxSpec(workspace=self.workspace, run_dir=self.run_dir, uid=self.uid,
                           tmp_bytes=self.limits.tmp_bytes, python=self.python, runtime=self.runtime,
                           data=self.data)
        self._events = queue.Queue()
        self._exited = {}
        self._gone = threading.Event()
        own_runtime = self.python is None and self.runtime is None
        use_template = kernel_template.wanted(privileged(), own_runtime)
        if use_template:  # started (or found) first: its imports overlap bubblewrap's set-up
            try:
                template = kernel_template.template(_popen)
            except OSError as e:
                kernel_template.disable(f"the kernel template could not be started ({e})")
                use_template = False
        info = None
        try:
            info, info_w = os.pipe()
            try:
                self.proc = _popen(
                    sandbox_command(spec, command=PLACEHOLDER if use_template else None, info_fd=info_w),
                    stdin=subprocess.DEVNULL if use_template else subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, close_fds=True, pass_fds=(info_w,), start_new_session=True,
                    preexec_fn=self.cgroup.attach_self if self.cgroup is not None else None,
                )
            finally:
                os.close(info_w)
        except (OSError, subprocess.SubprocessError) as e:
            if info is not None:
                os.close(info)
            self.teardown()
            raise SandboxError(f"sandbox slot {self.slot}: bubblewrap could not be started ({e})") from e
        try:
            self._find_namespace(info)
            if use_template:
                channel = self._fork_zygote_in(template, spec)
                self._channel = channel
                stream, self._tx = channel.makefile("rb"), channel.makefile("wb")
            else:
                stream, self._tx = self.proc.stdout, self.proc.stdin
            threading.Thread(target=self._read, args=(stream, self._events, self._gone), daemon=True,
                             name=f"sandbox-slot-{self.slot}").start()
            ev = self._wait_for("ready", timeout=120)
        except TemplateFailed as e:  # not this submission's doing: this sandbox and the next ones go without it
            self.teardown()
            kernel_template.disable(str(e))
            self.start()
            return
        except SandboxError:
            self.teardown()
            raise
        log.debug("sandbox slot %s generation %s ready (zygote pid %s)", self.slot, self.generation, ev["pid"])

    def _find_namespace(self, info: int) -> None:
        """The sandbox's init (its pid namespace's pid 1, as the host sees it) and that namespace,
        from what bwrap writes to its --info-fd as soon as the sandbox exists."""
        data = b""
        try:
            while chunk := os.read(info, 4096):
                data += chunk
        finally:
            os.close(info)
        try:
            self.init_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError) as e:
            raise SandboxError(f"sandbox slot {self.slot}: bwrap did not start the sandbox "
                               f"(status {self.proc.wait() if self.proc else None})") from e
        self.ns_inode = _pid_ns(self.init_pid)
        if self.ns_inode is None or self.ns_inode == _pid_ns(os.getpid()):
            raise SandboxError(f"sandbox slot {self.slot}: could not find the sandbox's pid namespace")

    def _fork_zygote_in(self, template: kernel_template.KernelTemplate, spec: SandboxSpec) -> socket.socket:
        """Wait until bubblewrap has built the sandbox (its placeholder says so), then have the
        template fork the zygote into it. Returns the zygote's channel."""
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        if not ready or self.proc.stdout.readline() != b"built\n":
            raise SandboxError(f"sandbox slot {self.slot}: the sandbox was not built (bwrap status {self.proc.poll()})")
        self.proc.stdout.close()
        try:  # the sandbox's init has its namespaces (and, since it built the sandbox, its root)
            return template.enter(self.init_pid, self.uid, self.cgroup.procs_files() if self.cgroup else [],
                                  env=zygote_env(spec.python or sys.executable), workspace=WORKSPACE)
        except kernel_template.TemplateError as e:
            raise TemplateFailed(f"sandbox slot {self.slot}: {e}") from e

    def alive(self) -> bool:
        """Is the sandbox running, with its zygote listening?"""
        return self.proc is not None and self.proc.poll() is None and not self._gone.is_set()

    def kill_sandbox(self) -> None:
        """Kill every process of the current sandbox now (its namespace init, bwrap, its cgroup)."""
        for pid in (self.init_pid, self.proc.pid if self.proc is not None else None):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def leftovers(self) -> list[int]:
        """Host pids of processes of the current submission that still exist."""
        left = set(scan(self.ns_inode, self.uid if privileged() else None))
        if self.cgroup is not None:
            left |= self.cgroup.pids()
        return sorted(left)

    def teardown(self, timeout: float = 15) -> None:
        """Kill everything the submission started and prove it is gone; discard its folders.
        Raises SlotRetired (and retires the slot) if that cannot be proven."""
        with self._lock:
            self.kernel = None
            proc = self.proc
            self.kill_sandbox()
            self.proc = None
            for end in (self._tx, self._channel):
                try:
                    if end is not None:
                        end.close()
                except OSError:
                    pass
            self._tx = self._channel = None
            deadline = time.monotonic() + timeout
            left = self.leftovers()
            while left and time.monotonic() < deadline:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
                left = self.leftovers()
            if proc is not None:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    left.append(proc.pid)
            if self.cgroup is not None and not left and not self.cgroup.remove(timeout=5):
                left = sorted(self.cgroup.pids()) or [-1]
            if left:
                self.retired = True
                log.error("sandbox slot %s (uid %s) RETIRED: processes %s of a submission survived cleanup",
                          self.slot, self.uid, left)
                raise SlotRetired(f"sandbox slot {self.slot}: processes {left} survived cleanup; slot retired")
            self.cgroup = None
            self.ns_inode = self.init_pid = None
            if self.gen_dir.exists():
                self._discarder.discard(self.gen_dir)

    def recycle(self) -> None:
        """Tear the current sandbox down (proven clean) and start a new one for the next student."""
        self.restarts += 1
        self.teardown()
        self.start()

    restart = recycle

    def close(self) -> None:
        try:
            self.teardown()
        except SlotRetired:
            pass
        self._discarder.join()
        if not self.retired:
            self.lease.release()
            try:
                (self.root / "owner").unlink()
                os.rmdir(self.root)
            except OSError:
                pass

    def __enter__(self) -> SandboxSlot:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- kernels ----------------------------------------------------------------------------------
    def spawn(self, env: dict[str, str] | None = None, argv: list[str] | None = None) -> KernelInfo:
        """Fork a kernel for the current submission. Returns as soon as the process exists; the
        kernel finishes starting in the background (clients wait for it)."""
        if not self.alive():
            raise SandboxError(f"sandbox slot {self.slot}: the sandbox is not running")
        name = uuid.uuid4().hex[:8]
        key = secrets.token_hex(16)
        inside = {"transport": "ipc", "ip": f"{RUN_DIR}/{name}", "key": key, "signature_scheme": "hmac-sha256",
                  "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
                  "kernel_name": "python3"}
        conn_file = self.run_dir / f"{name}.json"
        conn_file.write_text(json.dumps(inside))
        if privileged():
            os.chown(conn_file, self.uid, self.uid)
        kernel_env = {
            "PATH": f"{(self.python or Path(sys.executable)).parent}:/usr/bin:/bin",
            "HOME": "/tmp", "IPYTHONDIR": "/tmp/.ipython", "MPLCONFIGDIR": "/tmp/.matplotlib",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter",
            **self.extra_env, **(env or {}),
        }
        req = {"op": "spawn", "connection_file": f"{RUN_DIR}/{name}.json", "argv": argv or [],
               "env": kernel_env, "cwd": WORKSPACE, "limits": self.limits.rlimits()}
        ev = self._request(req, "spawned", timeout=60)
        outside = dict(inside, ip=str(self.run_dir / name))
        self.kernel = KernelInfo(pid=ev["pid"], connection=outside, started=time.monotonic(),
                                 generation=self.generation)
        return self.kernel

    def kill(self, kernel: KernelInfo) -> None:
        """Kill one kernel and the processes in its group (the rest of the sandbox stays until
        teardown, which kills everything)."""
        if self.alive() and self.kernel_alive(kernel.pid, kernel.generation):
            try:
                self._request({"op": "kill", "pid": kernel.pid}, "killed", timeout=10)
            except SandboxError as e:
                log.warning("%s", e)

    def kernel_alive(self, pid: int | None = None, generation: int | None = None) -> bool:
        """Is this kernel (of this sandbox generation, if given) still running?"""
        pid = pid if pid is not None else (self.kernel.pid if self.kernel else None)
        if pid is None or not self.alive() or generation not in (None, self.generation):
            return False
        self._drain()
        return pid not in self._exited

    def exit_status(self, pid: int) -> int | None:
        self._drain()
        return self._exited.get(pid)

    # -- pipe -------------------------------------------------------------------------------------
    @staticmethod
    def _read(stream, events: queue.Queue, gone: threading.Event) -> None:  # noqa: ANN001 - a binary file
        try:
            for line in stream:
                try:
                    events.put(json.loads(line))
                except ValueError:
                    continue
        except (OSError, ValueError):  # closed by teardown
            pass
        gone.set()
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
                # "set-up": template.py's set-up child or the zygote before it listened (no student code ran)
                failed = TemplateFailed if ev.get("stage") == "set-up" else SandboxError
                raise failed(f"sandbox slot {self.slot}: {ev.get('error')}")
            if ev.get("op") == "eof":
                status = self.proc.poll() if self.proc is not None else None
                raise SandboxError(f"sandbox slot {self.slot}: the sandbox exited (bwrap status {status})")

    def _request(self, req: dict, op: str, timeout: float) -> dict:
        tx = self._tx
        if self.proc is None or tx is None:
            raise SandboxError(f"sandbox slot {self.slot} is not running")
        try:
            tx.write((json.dumps(req) + "\n").encode())
            tx.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise SandboxError(f"sandbox slot {self.slot}: zygote unreachable ({e})") from e
        return self._wait_for(op, timeout)
