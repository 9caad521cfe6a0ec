"""Kernel zygote: runs INSIDE the sandbox, forks one fresh ipykernel per notebook.

A sandbox (and so this zygote) serves exactly one submission: the host starts a new one, with a
new pid namespace and a new workspace, for every submission, and kills the whole namespace after
it. So the zygote never cleans up after a student; it only forks kernels and kills single ones.

Why: importing ipykernel/IPython costs ~0.3 s of CPU per kernel. The zygote pays it once per
sandbox and then forks; every notebook still gets a new process of its own that has never run
anyone else's code (the zygote never executes student code).

Protocol: one JSON object per line on stdin, one per line on stdout.
  -> {"op": "spawn", "connection_file": PATH, "argv": [...], "env": {...}, "limits": {...}}
  <- {"op": "spawned", "pid": N}        (or {"op": "error", "error": "..."})
  -> {"op": "kill", "pid": N}           (kill one kernel's process group)
  <- {"op": "killed", "pid": N}
  <- {"op": "exit", "pid": N, "status": S}   (unsolicited: the kernel process ended)
  <- {"op": "ready", "pid": N}          (once, at start)
This file only uses the standard library and ipykernel: it is the only code of ours in the sandbox.
It is started in the sandbox by a new interpreter (`python zygote.py`), or forked into it already
imported by the worker's kernel template (template.py), which then calls `main()`.
"""

# ruff: noqa: E402 - the collector is paused before the imports below
import gc

# No cyclic collection while the modules below load: every object they make stays reachable, and
# CPython 3.11's collector ran over that growing heap again and again (a quarter of the zygote's
# start-up CPU). What was imported is frozen before the first fork (see the end of the imports).
gc.disable()

import code  # noqa: F401
import faulthandler  # noqa: F401
import json
import os
import pdb  # noqa: F401
import pydoc  # noqa: F401
import resource
import selectors
import signal
import sqlite3  # noqa: F401
import sys
import threading
import unicodedata  # noqa: F401


def _kernel_side_of_jupyter_client():
    """A kernel uses five of jupyter_client's modules (session, connect, jsonutil, localinterfaces,
    adapter), but the package's __init__ also imports the client side: clients, kernel managers,
    and the kernel provisioners, found by scanning every installed distribution's entry points
    (about a fifth of the zygote's start-up CPU). The package is made here without running its
    __init__, with the names a kernel takes from it; the first other name anyone asks of it (a
    student's `from jupyter_client import KernelManager`) runs the real __init__ then. Any other
    jupyter_client (a course environment's) falls back to the ordinary import."""
    import importlib.util

    if "jupyter_client" in sys.modules:
        return
    spec = importlib.util.find_spec("jupyter_client")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    once = threading.Lock()  # a kernel's threads may ask at once: the __init__ runs once, then all see it

    def complete(name):
        if name.startswith("__"):
            raise AttributeError(name)
        with once:
            if package.__dict__.pop("__getattr__", None) is not None:
                spec.loader.exec_module(package)
        return getattr(package, name)

    sys.modules["jupyter_client"] = package
    try:
        # BlockingKernelClient: named by a kernel app's trait (ConnectionFileMixin.blocking_class)
        from jupyter_client import _version, connect
        from jupyter_client.blocking import BlockingKernelClient
    except Exception:  # pragma: no cover - another layout: the ordinary import
        del sys.modules["jupyter_client"]
        return
    for name in ("__version__", "version_info", "protocol_version", "protocol_version_info"):
        if hasattr(_version, name):
            setattr(package, name, getattr(_version, name))
    for name in getattr(connect, "__all__", ()):
        setattr(package, name, getattr(connect, name))
    package.BlockingKernelClient = BlockingKernelClient
    package.__getattr__ = complete


_kernel_side_of_jupyter_client()

# Paid once: everything a kernel imports at start-up.
import ipykernel.ipkernel  # noqa: F401
import ipykernel.kernelapp
import ipykernel.zmqshell  # noqa: F401
import IPython.core.completer  # noqa: F401
import IPython.core.interactiveshell  # noqa: F401

# Kernels here run without ipykernel's debugger, as on a system without debugpy (ipykernel's own
# fallback): autograding never debugs, and importing debugpy cost ~0.15 s of CPU per sandbox, plus
# a Debugger per kernel. Student code can still import debugpy itself.
sys.modules["debugpy"] = None  # type: ignore[assignment]
try:
    import ipykernel.debugger  # noqa: F401 - now with _is_debugpy_available = False
except ImportError:  # pragma: no cover - other ipykernel versions
    pass
del sys.modules["debugpy"]

# What a kernel imports after the fork (kernel set-up, its first cell, its first traceback),
# measured with ipykernel 6/IPython 8: imported once here instead of in every kernel. Optional: a
# course environment may have other versions, where a name may not exist.
for _name in ("IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
              "IPython.core.logger", "IPython.extensions.storemagic", "IPython.utils.wildcard",
              "tornado.platform.asyncio", "executing", "asttokens", "fractions",
              "zipfile", "importlib.readers", "importlib.resources.readers", "pwd",
              "psutil"):  # what find_local_interfaces uses: the kernel template imports it only once
    try:
        __import__(_name)
    except ImportError:  # pragma: no cover - depends on the course environment
        pass

# Frozen before the first fork (the pattern gc.freeze() is for): the kernels' collections skip the
# imported modules' objects, so a kernel neither spends CPU on them nor copies their pages.
gc.freeze()
gc.enable()

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


def ended():
    """(pid, status) of every child that has ended, reaped without waiting."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def reap():
    for pid, status in ended():
        send({"op": "exit", "pid": pid, "status": status})


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


def find_local_interfaces():
    """jupyter_client's ConnectionFileMixin.load_connection_info works out the default ip (every
    interface of the machine, through psutil) even when the connection file names the ip: a quarter
    of each kernel's start-up CPU. Found once per sandbox, before the first kernel is forked, in
    the sandbox's network namespace, which is also the kernels'; jupyter_client keeps the answer
    for the process (and so for its forks). Not at import: the kernel template (template.py)
    imports this module outside any sandbox."""
    try:
        from jupyter_client import localinterfaces

        localinterfaces.localhost()
    except Exception:  # noqa: BLE001 - another jupyter_client: each kernel finds it, as it would anyway
        pass


def main():
    not_dumpable()
    find_local_interfaces()
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
                return  # the host went away: the sandbox (and every process in it) ends with us
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                handle(json.loads(line), sel, rfd, wfd)


def handle(req, sel, rfd, wfd):
    op = req.get("op")
    if op == "kill":
        try:
            os.killpg(int(req["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reap()
        send({"op": "killed", "pid": req["pid"]})
    elif op == "spawn":
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
