"""One cgroup per submission: memory and process count limited for the submission as a whole.

rlimits are per process: three forked children of 1 GiB each are three times the memory limit.
A cgroup with the memory and pids controllers counts every process of the submission together.
What this host offers is found out once (`detect`), strongest first:

1. cgroup v2 with memory and pids delegated to us: `COURSEHUB_SANDBOX_CGROUP` names a cgroup we may
   write whose `cgroup.subtree_control` has (or accepts) `+memory +pids`; else our own cgroup if it
   accepts them (the "no internal processes" rule refuses that when we live in it).
2. cgroup v1 memory and pids hierarchies we may write (a child of our own cgroup in each).
3. nothing: the caller says loudly that memory and processes are limited per process only.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "COURSEHUB_SANDBOX_CGROUP"


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2"):
                out.append((fields[4], rfields[0], set(rfields[2].split(",")) if len(rfields) > 2 else set()))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> our cgroup path, from /proc/self/cgroup."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@dataclass
class Backend:
    """Where per-submission cgroups are made: one parent folder per controller (v1) or one (v2)."""

    kind: str  # "v2" | "v1"
    parents: dict[str, Path]  # "memory"/"pids" -> folder (the same folder twice for v2)

    def describe(self) -> str:
        where = sorted({str(p) for p in self.parents.values()})
        return f"cgroup {self.kind} ({', '.join(where)})"


def _try_v2(mounts, own) -> Backend | None:
    v2 = [m for m, fstype, _ in mounts if fstype == "cgroup2"]
    if not v2:
        return None
    candidates = []
    if os.environ.get(ENV):
        candidates.append(Path(os.environ[ENV]))
    if "" in own:
        candidates += [Path(m) / own[""].lstrip("/") for m in v2]
    for parent in candidates:
        try:
            controllers = set((parent / "cgroup.controllers").read_text().split())
            if not {"memory", "pids"} <= controllers:
                continue
            run = parent / f"coursehub-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
            if not {"memory", "pids"} <= enabled:
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            run.mkdir()
            try:
                _write(run / "cgroup.subtree_control", "+memory +pids")
            except OSError:
                run.rmdir()
                raise
            return Backend("v2", {"memory": run, "pids": run})
        except OSError:
            continue
    return None


def _try_v1(mounts, own) -> Backend | None:
    parents = {}
    for ctrl in ("memory", "pids"):
        mount = next((m for m, fstype, opts in mounts if fstype == "cgroup" and ctrl in opts), None)
        if mount is None or ctrl not in own:
            return None
        run = Path(mount) / own[ctrl].lstrip("/") / f"coursehub-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            run.mkdir()
        except OSError:
            for p in parents.values():
                p.rmdir()
            return None
        parents[ctrl] = run
    return Backend("v1", parents)


_detected: tuple[Backend | None] | None = None


def _sweep_stale(backend: Backend) -> None:
    """Remove empty run folders of runs that died (`coursehub-<pid>-*` whose pid is gone)."""
    for parent in {p.parent for p in backend.parents.values()}:
        for d in parent.glob("coursehub-*-*"):
            try:
                pid = int(d.name.split("-")[1])
                os.kill(pid, 0)
            except ProcessLookupError:
                for sub in [*d.glob("*/"), d]:  # its submissions' groups, then itself
                    try:
                        sub.rmdir()  # only ever succeeds for an empty one (no process in it)
                    except OSError:
                        pass
            except (ValueError, IndexError, PermissionError):
                continue


def detect() -> Backend | None:
    """The strongest cgroup backend this process can use (found once per process)."""
    global _detected
    if _detected is None:
        backend = None
        try:
            mounts, own = _mounts(), _own_paths()
            backend = _try_v2(mounts, own) or _try_v1(mounts, own)
        except OSError as e:
            log.debug("no cgroups: %s", e)
        _detected = (backend,)
        if backend is not None:
            _sweep_stale(backend)
            creator = os.getpid()
            atexit.register(lambda: os.getpid() == creator and cleanup_backend())
    return _detected[0]


class SubmissionCgroup:
    """The cgroup (one per controller) that holds every process of one submission's sandbox."""

    def __init__(self, backend: Backend, name: str, memory_bytes: int, processes: int) -> None:
        self.backend = backend
        self.dirs = {c: p / name for c, p in backend.parents.items()}
        for d in set(self.dirs.values()):
            d.mkdir()
        self._procs_files = [str(d / "cgroup.procs") for d in set(self.dirs.values())]
        mem, pids = self.dirs["memory"], self.dirs["pids"]
        if backend.kind == "v2":
            _write(mem / "memory.max", str(memory_bytes))
            if (mem / "memory.swap.max").exists():
                _write(mem / "memory.swap.max", "0")
            _write(pids / "pids.max", str(processes))
        else:
            _write(mem / "memory.limit_in_bytes", str(memory_bytes))
            if (mem / "memory.memsw.limit_in_bytes").exists():
                _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(pids / "pids.max", str(processes))

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes its pid (or 0) to, to move itself in."""
        return list(self._procs_files)

    def attach_self(self) -> None:
        """Move the calling process in. Runs between fork and exec of the sandbox, so it uses
        only plain system calls (no locks another thread could have held at fork time)."""
        me = str(os.getpid()).encode()
        for path in self._procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, me)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in set(self.dirs.values()):
            try:
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except FileNotFoundError:
                pass
        return out

    def kill_all(self) -> None:
        kill_file = self.dirs["memory"] / "cgroup.kill"
        if self.backend.kind == "v2" and kill_file.exists():
            try:
                _write(kill_file, "1")
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def oom_kills(self) -> int:
        """How many processes the memory limit killed (0 if the kernel does not say)."""
        mem = self.dirs["memory"]
        try:
            if self.backend.kind == "v2":
                text = (mem / "memory.events").read_text()
                key = "oom_kill"
            else:
                text = (mem / "memory.oom_control").read_text()
                key = "oom_kill"
            for line in text.splitlines():
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self, timeout: float = 5) -> bool:
        """Kill what is left, wait until empty, remove. False if it could not be emptied."""
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                return False
            self.kill_all()
            time.sleep(0.02)
        for d in set(self.dirs.values()):
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:  # EBUSY while the last exits are being accounted
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        return False
                    time.sleep(0.02)
        return True


def cleanup_backend() -> None:
    """Remove this process's run folders (empty by then) at exit."""
    backend = _detected[0] if _detected else None
    if backend is None:
        return
    for p in set(backend.parents.values()):
        try:
            p.rmdir()
        except OSError:
            pass
