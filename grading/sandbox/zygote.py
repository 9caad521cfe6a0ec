"""Kernel zygote: runs INSIDE the sandbox, forks one fresh ipykernel per notebook.

A sandbox slot serves one submission at a time: its kernels (one per notebook) may be forked ahead
of time, all after a "fresh" spawn that removed everything the previous submission left.

Why: importing ipykernel/IPython costs ~0.3 s of CPU per kernel. The zygote pays it once per
sandbox slot and then forks; every notebook still gets a new process of its own that has never run
anyone else's code (the zygote never executes student code). Before each fork the zygote kills
every other process in the sandbox (kill(-1)) and wipes the writable places (workspace, /tmp,
/dev/shm), so nothing from one student's kernel can reach the next one.

Protocol: one JSON object per line on stdin, one per line on stdout.
  -> {"op": "spawn", "connection_file": PATH, "argv": [...], "env": {...}, "limits": {...},
      "fresh": true}                    (fresh: first kill everything and wipe, as for a new student)
  <- {"op": "spawned", "pid": N}        (or {"op": "error", "error": "..."})
  -> {"op": "kill", "pid": N}           (kill one kernel's process group)
  <- {"op": "killed", "pid": N}
  -> {"op": "reset"}                    (kill the kernel and everything it started, wipe)
  <- {"op": "reset", "killed": N}
  <- {"op": "exit", "pid": N, "status": S}   (unsolicited: the kernel process ended)
This file only uses the standard library and ipykernel: it is the only code of ours in the sandbox.
"""

import json
import os
import resource
import selectors
import shutil
import signal
import sys

# Paid once: everything a kernel imports at start-up.
import ipykernel.ipkernel  # noqa: F401
import ipykernel.kernelapp
import ipykernel.zmqshell  # noqa: F401
import IPython.core.completer  # noqa: F401
import IPython.core.interactiveshell  # noqa: F401

try:  # imported by every kernel at start-up (the debugger pulls in debugpy): pay it here, once
    import ipykernel.debugger  # noqa: F401
except ImportError:  # pragma: no cover - kernels without debugpy
    pass
import code  # noqa: F401
import faulthandler  # noqa: F401
import pdb  # noqa: F401
import pydoc  # noqa: F401
import sqlite3  # noqa: F401
import unicodedata  # noqa: F401

LIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "address_space": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "file_size": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
}


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def others():
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]


def sweep():
    """Kill every process of the sandbox but the zygote and init; reap our own children."""
    killed = 0
    for _ in range(200):
        left = others()
        if not left:
            break
        killed += len(left)
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap()
    return killed


def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send({"op": "exit", "pid": pid, "status": status})


def wipe(paths):
    for top in paths:
        if not os.path.isdir(top):
            continue
        for root, dirs, _files in os.walk(top):
            for d in dirs:
                try:
                    os.chmod(os.path.join(root, d), 0o700)
                except OSError:
                    pass
        for name in os.listdir(top):
            path = os.path.join(top, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def run_kernel(req):
    """In the forked child: apply limits, then become an ordinary ipykernel."""
    os.setsid()
    for key, value in req.get("limits", {}).items():
        if key in LIMITS and value:
            resource.setrlimit(LIMITS[key], (int(value), int(value)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 1024)
    os.environ.clear()
    os.environ.update(req.get("env", {}))
    os.chdir(req.get("cwd", "/"))
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    sys.argv = ["ipykernel_launcher"]
    app = ipykernel.kernelapp.IPKernelApp.instance()
    app.initialize(["-f", req["connection_file"], *req.get("argv", [])])
    app.start()
    os._exit(0)


def not_dumpable():
    """Processes of the same uid (the student's) may not ptrace the zygote or open its
    /proc/<pid>/fd: they cannot write to the pipe that talks to the grader."""
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def main():
    not_dumpable()
    wipe_paths = [p for p in sys.argv[1:]]
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    os.set_blocking(rfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    sel.register(rfd, selectors.EVENT_READ, "signal")
    send({"op": "ready", "pid": os.getpid()})
    buf = b""
    while True:
        for key, _ in sel.select():
            if key.data == "signal":
                try:
                    os.read(rfd, 4096)
                except BlockingIOError:
                    pass
                reap()
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                sweep()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                handle(json.loads(line), wipe_paths, sel, rfd, wfd)


def handle(req, wipe_paths, sel, rfd, wfd):
    op = req.get("op")
    if op == "reset":
        killed = sweep()
        wipe(wipe_paths)
        send({"op": "reset", "killed": killed})
    elif op == "kill":
        try:
            os.killpg(int(req["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reap()
        send({"op": "killed", "pid": req["pid"]})
    elif op == "spawn":
        if req.get("fresh", True):
            sweep()
            wipe(wipe_paths)
        os.makedirs(req["env"].get("IPYTHONDIR", "/tmp/ipython"), exist_ok=True)
        try:
            pid = os.fork()
        except OSError as e:
            send({"op": "error", "error": f"fork failed: {e}"})
            return
        if pid == 0:
            try:
                sel.close()
                os.close(rfd)
                os.close(wfd)
                run_kernel(req)
            finally:
                os._exit(70)
        send({"op": "spawned", "pid": pid})
    else:
        send({"op": "error", "error": f"unknown op {op!r}"})


if __name__ == "__main__":
    main()
