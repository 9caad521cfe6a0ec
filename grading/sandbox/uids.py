"""Host-wide allocation of sandbox uids, so no two sandboxes on a host ever share one.

RLIMIT_NPROC is counted per real uid on the whole host. If two autograde runs (two courses, a
CLI run beside the queue worker, ...) used the same uid, one run's fork bomb would use up the
other run's process budget. Each slot therefore takes a uid by holding an exclusive `flock` on
`<lock dir>/<uid>.lock` for as long as it lives: the kernel drops the lock when the process dies,
even on SIGKILL, so a crashed run never leaks uids. A free lock on a uid that still owns processes
(left over from a run that died) is skipped, never handed out.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

#: Sandbox uids are BASE_UID .. BASE_UID + COUNT - 1; make sure no one else on the host uses them.
BASE_UID = 61000
COUNT = 1000


class NoFreeUid(RuntimeError):
    """Every sandbox uid on this host is taken."""


def lock_dir() -> Path:
    """Host-wide when we can write /run (root); else per user (uids matter only as root)."""
    for candidate in (os.environ.get("COURSEHUB_SANDBOX_LOCK_DIR"), "/run/coursehub/sandbox-uids"):
        if not candidate:
            continue
        try:
            Path(candidate).mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return Path(candidate)
        except OSError:
            continue
    d = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/coursehub-{os.geteuid()}") / "sandbox-uids"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def uid_has_processes(uid: int) -> bool:
    """Does any process on the host run with this real or effective uid?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if uid in (int(x) for x in line.split()[1:3]):
                            return True
                        break
        except OSError:
            continue
    return False


class UidLease:
    """One uid held for the life of a slot (or of this process, if the slot is retired)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def acquire(preferred: int = 0) -> UidLease:
    """Take a free uid, trying BASE_UID + preferred first."""
    d = lock_dir()
    order = [(preferred + i) % COUNT for i in range(COUNT)]
    for n in order:
        uid = BASE_UID + n
        fd = os.open(d / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if uid_has_processes(uid):  # left over from a run that died: not safe to share
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise NoFreeUid(f"all {COUNT} sandbox uids from {BASE_UID} are in use on this host (locks in {d})")
