"""Remove a folder a student controlled, however deep or odd, without recursion.

A submission may leave a tree thousands of levels deep, folders without permissions, names that
are not UTF-8, symlinks to elsewhere. `remove_tree` never recurses and never follows a symlink:
it works on one folder at a time through file descriptors (`dir_fd`), and moves every subfolder
it meets up to the top of a private trash folder before emptying it, so the depth it works at is
always one and it holds at most two descriptors open. `discard` takes a folder out of use at once
(a rename) and removes it in the background.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _empty(trash_fd: int, name: str) -> None:
    """Empty trash/<name> (a folder): unlink its files, move its subfolders up into trash/."""
    os.chmod(name, 0o700, dir_fd=trash_fd)  # a folder the student made unreadable or unwritable
    fd = os.open(name, _OPEN_DIR, dir_fd=trash_fd)
    try:
        for entry in os.scandir(fd):
            try:
                is_dir = stat.S_ISDIR(os.lstat(entry.name, dir_fd=fd).st_mode)
            except FileNotFoundError:
                continue
            if is_dir:
                os.chmod(entry.name, 0o700, dir_fd=fd)  # moving a folder writes its ".." entry
                os.rename(entry.name, f"d{uuid.uuid4().hex}", src_dir_fd=fd, dst_dir_fd=trash_fd)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=trash_fd)


def remove_tree(path: Path) -> None:
    """Remove `path` and everything below it. Raises OSError if something cannot be removed."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    trash = path.parent / f".trash-{uuid.uuid4().hex}"
    os.mkdir(trash, 0o700)
    os.rename(path, trash / "top")
    trash_fd = os.open(trash, _OPEN_DIR)
    try:
        while True:
            names = os.listdir(trash_fd)
            if not names:
                break
            for name in names:
                _empty(trash_fd, name)
    finally:
        os.close(trash_fd)
    os.rmdir(trash)


class Discarder:
    """Takes folders out of use at once and removes them on a background thread."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self.failures: list[str] = []

    def discard(self, path: Path) -> None:
        path = Path(path)
        if not os.path.lexists(path):
            return
        gone = path.with_name(f".discarded-{path.name}-{uuid.uuid4().hex[:8]}")
        os.rename(path, gone)
        t = threading.Thread(target=self._remove, args=(gone,), daemon=True, name="sandbox-discard")
        t.start()
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _remove(self, path: Path) -> None:
        try:
            remove_tree(path)
        except OSError as e:
            self.failures.append(f"{path}: {e}")
            log.error("could not remove the discarded sandbox folder %s: %s", path, e)

    def join(self, timeout: float = 60) -> None:
        for t in self._threads:
            t.join(timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_roots(base: Path, prefix: str, discarder: Discarder) -> None:
    """Discard sandbox folders left by workers that died (SIGKILL gives them no chance to clean
    up): those whose `owner` file names a process that no longer exists."""
    for root in Path(base).glob(f"{prefix}*"):
        try:
            pid = int((root / "owner").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # not ours, or still being set up
        if not _alive(pid):
            try:
                discarder.discard(root)
            except OSError:
                continue
