"""The process tree of `coursehub up`, so that stopping it leaves nothing behind.

JupyterHub starts the proxy, its services and every user server in sessions of their own (so a
Ctrl-C in the terminal reaches only the hub), which means no single process group holds them all.
`up` therefore makes itself a child subreaper: any process below it whose parent dies is re-parented
to `up` rather than to init, so its descendants, found through /proc, are exactly what it started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, arg: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphans below this process come back to it (Linux >= 3.4); False where unsupported."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def terminate_with_parent() -> None:
    """preexec_fn for the hub: if `up` itself is killed (SIGKILL, OOM), the hub is told to stop."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(root: int | None = None) -> list[int]:
    """Pids of every living (non-zombie) descendant of `root` (default: this process)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_descendants(term_wait: float = 5, keep: set[int] | None = None) -> int:
    """SIGTERM every descendant, SIGKILL what remains after `term_wait` s; returns how many there were.

    Repeats until none is left, since a dying process can orphan children onto us.
    """
    keep = keep or set()
    seen: set[int] = set()
    for _ in range(10):
        pids = [p for p in descendants() if p not in keep]
        if not pids:
            break
        seen.update(pids)
        _signal_all(pids, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + term_wait
        while time.monotonic() < deadline and any(p in descendants() for p in pids):
            time.sleep(0.1)
        _signal_all([p for p in descendants() if p not in keep], signal.SIGKILL)
        time.sleep(0.1)
        _reap_others(keep)
    return len(seen)


def wait(proc: subprocess.Popen) -> int:
    """`proc.wait()`, reaping on the way the orphans re-parented to us (a subreaper must)."""
    while True:
        try:
            return proc.wait(1)
        except subprocess.TimeoutExpired:
            _reap_others({proc.pid})


def _reap_others(keep: set[int]) -> None:
    for pid in _zombie_children():
        if pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _zombie_children() -> list[int]:
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] == "Z" and stat[1] == me:
                out.append(int(entry.name))
    return out
