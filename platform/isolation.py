"""Isolation of user servers on the local platform: what a student's code can see and touch.

Three modes, chosen once at `coursehub up` and announced in its banner and the hub's log:

- ``users`` (the hub runs as root): every hub user gets a system account of their own (created on
  first spawn, named ``<prefix><escaped name>``), a home only they can open (0700), and a server that
  runs as that account inside a bubblewrap sandbox which hides the state folder, every other home and
  the hub's own home. The state folder is root's alone (0700), so even outside the sandbox the
  gradebooks, databases, cookie secret and tool key are out of reach. Course staff reach their
  course's shared nbgrader folder through a group per course (``<prefix>staff-<course>``).
- ``sandbox`` (not root, bubblewrap works): every server runs as the hub's user, but inside a
  bubblewrap sandbox that shows only its own home (read-write) and the runtime (read-only); the
  state folder, other homes and the hub user's home are hidden, /proc shows only its own processes.
- ``none``: nothing separates users; fine for one person trying coursehub, not for a class.

`COURSEHUB_USER_ISOLATION` (users | sandbox | none) overrides the choice.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

MODE_ENV = "COURSEHUB_USER_ISOLATION"
PREFIX_ENV = "COURSEHUB_UNIX_USER_PREFIX"
DEFAULT_PREFIX = "jupyter-"
MODES = ("users", "sandbox", "none")
MAX_NAME = 32  # useradd's limit on Linux

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

_accounts = threading.Lock()  # one useradd/groupadd at a time in this process (they lock /etc/passwd)


class IsolationError(RuntimeError):
    """The requested isolation cannot be provided; the message says why and what to do."""


# --- choosing and describing the mode ---------------------------------------------------------

def bwrap_works() -> bool:
    if not os.path.exists(BWRAP):
        return False
    probe = [BWRAP, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def choose_mode() -> str:
    """The mode in force: `$COURSEHUB_USER_ISOLATION` if set, else the strongest one available."""
    wanted = os.environ.get(MODE_ENV, "").strip()
    if wanted in MODES:
        return wanted
    if os.geteuid() == 0 and shutil.which("useradd") and os.path.exists(SETPRIV) and bwrap_works():
        return "users"
    if os.geteuid() != 0 and bwrap_works():
        return "sandbox"
    return "none"


def describe(mode: str) -> str:
    """One line for the banner and the log."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if mode == "users":
        return (f"per-user system accounts ({user_prefix()}*), homes 0700, each server sandboxed "
                "(bubblewrap); the state folder is readable by root only")
    if mode == "sandbox":
        return (f"every server runs as {me} in a bubblewrap sandbox that shows only its own home "
                "(run as root for per-user accounts)")
    return (f"NONE: every server runs as {me} and can read other users' work, the gradebooks and the "
            "hub's secrets; for trying coursehub alone, not for a class (install bubblewrap, or run as root)")


def user_prefix() -> str:
    prefix = os.environ.get(PREFIX_ENV, DEFAULT_PREFIX)
    if not re.fullmatch(r"[a-z][a-z0-9]{0,11}-", prefix):
        raise IsolationError(f"{PREFIX_ENV}={prefix!r}: expected a short lowercase word ending in '-'")
    return prefix


# --- the state folder ---------------------------------------------------------------------------

def lock_state_dir(state_dir: Path) -> IO[str] | None:
    """An exclusive lock on the state folder for this `up` (None if another holds it)."""
    f = open(Path(state_dir) / ".up.lock", "a+")  # noqa: SIM115 - held open for the run
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def harden_state_dir(state_dir: Path) -> None:
    """The state folder and everything in it is root's: no other account may list or read it."""
    state_dir = Path(state_dir)
    os.chmod(state_dir, 0o700)
    for path in state_dir.rglob("*"):
        if path.is_symlink() or any(_under(path, state_dir / d) for d in ("homes", "course-dirs", *PUBLIC)):
            continue
        try:
            os.chmod(path, path.stat().st_mode & 0o770)
        except FileNotFoundError:
            pass  # a journal or temporary file that went away meanwhile


#: Folders of the state folder every user server reads (through its sandbox): their Jupyter
#: configuration and the textbooks' git repositories. Nothing secret is kept there.
PUBLIC = ("jupyter-config", "textbook-repos", "envs")  # envs: course environments (coursehub env build)


def readable_by_all(folder: Path) -> None:
    """Let every account read `folder` (where the hub writes with umask 007)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            os.chmod(path, mode | (0o055 if path.is_dir() else 0o044) | (0o011 if mode & 0o100 else 0))


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


# --- system accounts (users mode) ---------------------------------------------------------------

def unix_name(hub_name: str, prefix: str | None = None) -> str:
    """A deterministic, valid system user name for a hub user; names that had to change carry a hash
    of the original, so two hub users never map to one account."""
    prefix = prefix or user_prefix()
    slug = re.sub(r"[^a-z0-9]+", "-", hub_name.lower()).strip("-")
    room = MAX_NAME - len(prefix)
    if slug == hub_name and slug and len(slug) <= room and not re.search(r"-[0-9a-f]{10}$", slug):
        return prefix + slug
    digest = hashlib.sha256(hub_name.encode()).hexdigest()[:10]
    short = slug[: room - len(digest) - 1].rstrip("-")
    return f"{prefix}{short}-{digest}" if short else f"{prefix}{digest}"


def account_tag(hub_name: str) -> str:
    """Kept in the account's comment field: which hub user the account belongs to."""
    return "coursehub " + hashlib.sha256(hub_name.encode()).hexdigest()[:40]


def ensure_account(hub_name: str, home: Path) -> pwd.struct_passwd:
    """The hub user's system account and private home, created if missing (idempotent; safe when
    many servers of a class start at once). Refuses an account that belongs to someone else."""
    name = unix_name(hub_name)
    tag = account_tag(hub_name)
    with _accounts, _host_lock():
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            _run_retrying(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
                           "--shell", "/usr/sbin/nologin", "--comment", tag, name], ok_codes=(0, 9))
            account = pwd.getpwnam(name)
    if account.pw_gecos != tag:
        raise IsolationError(f"the system account {name} exists but does not belong to this hub user; "
                             "rename or remove it")
    _private_dir(home, account.pw_uid, account.pw_gid)
    return account


def _private_dir(path: Path, uid: int, gid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink():
        raise IsolationError(f"{path} is a symbolic link; a home folder must be a real folder")
    if path.stat().st_uid != uid:  # new, or restored from a backup (`coursehub restore` runs as root)
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, 0o700)


def staff_group(course_id: str, prefix: str | None = None) -> str:
    prefix = prefix or user_prefix()
    slug = re.sub(r"[^a-z0-9]+", "-", course_id.lower()).strip("-")
    name = f"{prefix}staff-{slug}"
    if len(name) > MAX_NAME or slug != course_id:
        name = f"{prefix}staff-{hashlib.sha256(course_id.encode()).hexdigest()[:10]}"
    return name


def share_course_dirs(account: pwd.struct_passwd, teaches: dict[str, Path], all_courses: list[str]) -> None:
    """Make `account` a member of the staff group of each course it teaches (and of no other), and
    give each such group its course folder (setgid, group read-write, nothing for others)."""
    with _accounts, _host_lock():
        for course in all_courses:
            group = staff_group(course)
            member = _member(group, account.pw_name)
            if course in teaches and not member:
                _run_retrying(["groupadd", "--system", group], ok_codes=(0, 9))
                _run_retrying(["gpasswd", "-a", account.pw_name, group], ok_codes=(0,))
            elif course not in teaches and member:
                _run_retrying(["gpasswd", "-d", account.pw_name, group], ok_codes=(0, 3))
    for course, folder in teaches.items():
        if folder.is_dir():
            _give_to_group(folder, grp.getgrnam(staff_group(course)).gr_gid)


def _member(group: str, user: str) -> bool:
    try:
        return user in grp.getgrnam(group).gr_mem
    except KeyError:
        return False


def _give_to_group(folder: Path, gid: int) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        st = path.stat()
        os.chown(path, st.st_uid, gid)
        if path.is_dir():
            os.chmod(path, 0o2770)
        else:
            os.chmod(path, (st.st_mode & 0o770) | 0o660)


@contextmanager
def _host_lock() -> Iterator[None]:
    """One account change at a time on this host, across hub processes: useradd checks that a name is
    free *before* it locks /etc/passwd, so two at once can both add the same name."""
    folder = Path("/run")  # root's alone (not /run/lock or /tmp, where anyone could hold the lock)
    fd = os.open(folder / "coursehub-accounts.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _run_retrying(cmd: list[str], ok_codes: tuple[int, ...]) -> None:
    """Account tools fail with 10 when another process holds /etc/passwd's lock: retry briefly."""
    for attempt in range(20):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode in ok_codes:
            return
        if r.returncode != 10:
            break
        time.sleep(0.05 * (attempt + 1))
    raise IsolationError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.strip()}")


# --- the sandbox around a user server ---------------------------------------------------------------

def runtime_paths() -> list[Path]:
    """What the server's Python needs to be visible even below a hidden folder."""
    from coursehub.paths import SOURCE_ROOT

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).parent.parent}
    if SOURCE_ROOT is not None:
        paths.add(SOURCE_ROOT)
    return sorted(paths)


def data_roots(data: list[tuple[Path, PurePosixPath]]) -> list[Path]:
    """The top folders (/srv, /mnt, /data) the datasets are mounted below: emptied in the sandbox,
    because a mount point can't be made in the read-only host tree. They must exist on the host."""
    roots = sorted({Path("/", *PurePosixPath(inside).parts[1:2]) for _, inside in data})
    missing = [r for r in roots if not r.is_dir()]
    if missing:
        raise IsolationError(f"course data is mounted below {missing[0]}, which does not exist on this machine: "
                             f"create it (mkdir {missing[0]}) or mount the data below /srv")
    return roots


def sandbox_command(cmd: list[str], *, home: Path, hidden: list[Path], read_only: list[Path],
                    read_write: list[Path], account: pwd.struct_passwd | None,
                    data: list[tuple[Path, PurePosixPath]] | None = None) -> list[str]:
    """`cmd` wrapped in bubblewrap: the host read-only minus the `hidden` folders (each replaced by an
    empty one), then `read_only` and `read_write` folders shown again, the home read-write, and the
    course's datasets read-only at their mount paths; own /proc, /tmp, ipc and session. With
    `account` (root only), the server then drops to that account."""
    data = list(data or [])
    hub_home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    public = {Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")}  # emptied, but writable by anyone
    hide = sorted({Path(p) for p in [*hidden, *public, hub_home, Path("/run"), Path("/home"), *data_roots(data)]
                   if Path(p) != Path("/") and Path(p).exists()}, key=lambda p: len(p.parts))
    out = [BWRAP, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]

    def empty(p: Path) -> list[str]:  # hidden folders are traversable, not listable
        return ["--perms", "1777" if p in public else "0711", "--tmpfs", str(p)]

    def bind(kind: str, p: Path, source: Path | None = None, perms: str = "0711") -> list[str]:
        made = [a for a in reversed(p.parents) if any(_under(a, h) and a != h for h in hide)]
        return [*[x for a in made for x in ("--perms", perms, "--dir", str(a))], kind, str(source or p), str(p)]

    for p in hide:
        out += empty(p)
    shown = [p for p in runtime_paths() if any(_under(p, h) for h in hide)]
    for p in shown:
        out += bind("--ro-bind", p)
    for p in hide:  # a runtime folder shown again (a checkout) must not show a hidden one inside it
        if any(_under(p, r) and p != r for r in shown):
            out += empty(p)
    for p in read_only:
        out += bind("--ro-bind", Path(p))
    for p in [*read_write, home]:  # folders made on the way to these are traversable only
        out += bind("--bind", Path(p))
    for host, inside in data:  # read-only: students read the dataset, never change it
        out += bind("--ro-bind", Path(inside), Path(host), perms="0755")  # /srv/data listable
    out += ["--chdir", str(home), "--"]
    if account is not None:
        out += [SETPRIV, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return out + list(cmd)
