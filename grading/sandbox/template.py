"""Kernel template: imports ipykernel once per worker and forks a zygote into each new sandbox.

Why: starting Python and importing ipykernel/IPython in every submission's sandbox was the largest
part of autograding's CPU (about 0.4 s per submission, 40 % of a run). This process pays it once.
For each submission the host builds the sandbox exactly as before (bubblewrap: new pid, mount,
network, ipc, uts and cgroup namespaces, the submission's own workspace, its cgroup), but runs only
a placeholder in it; the template forks a child that joins those namespaces, drops to the slot's
uid with no capabilities and no new privileges, and becomes that sandbox's zygote (zygote.py's
loop, unchanged). Kernels are then forked from it as before.

What the template is: a process of coursehub's own environment, started by the worker with an
empty environment, that imports the modules a kernel needs and nothing else. It never receives a
submission's files or output, never runs student code, and is invisible from every sandbox (it is
outside their pid namespaces). It runs as root (joining a sandbox's namespaces needs
CAP_SYS_ADMIN), so it is only used when the worker itself runs as root with coursehub's own
environment; otherwise each sandbox starts its zygote with a new interpreter, as before.

Protocol on fd 0 (a unix socket to the host), one JSON object per line:
  -> {"op": "enter", "pid": N, "uid": U, "cgroup": [procs files], "env": {...}, "workspace": "..."}
     with one file descriptor attached: the new zygote's channel to the host
  <- {"op": "entered", "status": S}       (S: the set-up child's exit status, 0 = joined)
  <- {"op": "ready", "pid": N}            (once, at start)
"""

# ruff: noqa: E402 - zygote's imports are what this process exists for
import ctypes
import json
import os
import select
import signal
import socket
import sys

import zygote  # noqa: I001 - the sandbox's zygote, beside this file: its imports are the template

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
#: joined in this order; the mount namespace last (after it, the host's /proc is out of sight)
NAMESPACES = (("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000), ("cgroup", 0x02000000),
              ("pid", 0x20000000), ("mnt", 0x00020000))

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges(uid: int) -> None:
    """What setpriv does for the bubblewrap path: no supplementary groups, the slot's uid and gid,
    an empty bounding, ambient, inheritable, permitted and effective capability set, no new
    privileges. Verified afterwards from /proc/self/status: anything left is fatal."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "dropping the capability bounding set")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    os.setresuid(uid, uid, uid)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    _check(_libc.capset(ctypes.byref(header), data), "clearing capabilities")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no_new_privs")
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(status[key], 16):
            raise OSError(f"{key} is {status[key]} after dropping privileges")
    if status["NoNewPrivs"].strip() != "1" or any(int(x) != uid for x in status["Uid"].split() + status["Gid"].split()):
        raise OSError("uid, gid or no_new_privs not as asked")


def enter(req: dict, channel: int) -> None:
    """In the set-up child: join the sandbox whose init has host pid `req["pid"]`, then fork the
    zygote inside its pid namespace and exit."""
    for path in req.get("cgroup", []):  # the submission's cgroup, while the host's /sys is in sight
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    fds = [(os.open(f"/proc/{int(req['pid'])}/ns/{name}", os.O_RDONLY), flag) for name, flag in NAMESPACES]
    for fd, flag in fds:
        _check(_libc.setns(fd, flag), "joining the sandbox's namespaces")
        os.close(fd)
    pid = os.fork()  # the child is the first of this process's children in the sandbox's pid namespace
    if pid == 0:
        try:
            become_zygote(req, channel)
        except BaseException as e:  # noqa: BLE001 - told to the host on the zygote's channel, then gone
            os.write(channel, (json.dumps({"op": "error", "stage": "set-up", "error": f"zygote set-up: {e}"})
                               + "\n").encode())
        os._exit(70)
    os._exit(0)


def become_zygote(req: dict, channel: int) -> None:
    os.setsid()
    drop_privileges(int(req["uid"]))
    os.chdir(req["workspace"])
    os.environ.clear()
    os.environ.update(req["env"])
    os.dup2(channel, 0)
    os.dup2(channel, 1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 2)
    os.closerange(3, 1024)
    zygote.main()
    os._exit(0)


class Children:
    """Reaps this process's children as soon as they end. The template is a child subreaper: a
    zygote, once its set-up child has exited, is the template's child (not the host's init, which
    may reap late: a sandbox's namespace cannot end before its last process has been reaped)."""

    def __init__(self) -> None:
        self.exited: dict[int, int] = {}
        self.wakeup, wfd = os.pipe()
        os.set_blocking(self.wakeup, False)
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def reap(self) -> None:
        try:
            os.read(self.wakeup, 4096)
        except BlockingIOError:
            pass
        self.exited.update(zygote.ended())

    def wait(self, pid: int) -> int:
        while pid not in self.exited:
            select.select([self.wakeup], [], [], 1.0)
            self.reap()
        return self.exited.pop(pid)


def serve(control: socket.socket) -> None:
    children = Children()
    buf = b""
    channels: list[int] = []  # one per request, in order (a request's bytes may arrive in pieces)
    while True:
        ready, _, _ = select.select([control, children.wakeup], [], [])
        if children.wakeup in ready:
            children.reap()
            children.exited.clear()  # zygotes: nobody waits for their status
        if control not in ready:
            continue
        data, fds, _, _ = socket.recv_fds(control, 65536, 4)
        if not data:
            return  # the worker went away
        channels += fds
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            channel = channels.pop(0) if channels else None
            if req.get("op") != "enter" or channel is None:
                if channel is not None:
                    os.close(channel)
                control.sendall(b'{"op": "error", "error": "expected enter with a channel"}\n')
                continue
            pid = os.fork()
            if pid == 0:
                try:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    control.close()
                    enter(req, channel)
                except BaseException as e:  # noqa: BLE001
                    try:
                        os.write(channel, (json.dumps({"op": "error", "stage": "set-up", "error": f"sandbox join: {e}"})
                                           + "\n").encode())
                    finally:
                        os._exit(71)
                os._exit(72)
            os.close(channel)
            status = children.wait(pid)
            control.sendall((json.dumps({"op": "entered", "status": status}) + "\n").encode())


def as_in_the_sandbox() -> None:
    """Take out what the host's environment adds that a sandbox's Python does not have:
    coursehub's editable-install finder (bwrap.NO_COURSEHUB_PTH hides its `.pth` there)."""
    for hooks in (sys.meta_path, sys.path_hooks):
        hooks[:] = [h for h in hooks if not getattr(h, "__module__", "").startswith("__editable___coursehub")
                    and not type(h).__module__.startswith("__editable___coursehub")]
    for name in [n for n in sys.modules if n.startswith("__editable___coursehub")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()


def main() -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "tying the template to its worker")
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "becoming the zygotes' reaper")
    control = socket.socket(fileno=0)
    as_in_the_sandbox()
    control.sendall((json.dumps({"op": "ready", "pid": os.getpid()}) + "\n").encode())
    serve(control)


if __name__ == "__main__":
    main()
