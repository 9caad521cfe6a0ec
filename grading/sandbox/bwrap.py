"""The bubblewrap command line for one submission's sandbox.

What the sandbox sees: the Python runtime read-only (the interpreter's prefix, the virtualenv,
/usr and a few files of /etc), a private /proc, a minimal /dev, a size-capped /tmp, its own new
workspace (read-write) and its kernel socket folder. Nothing else of the host: no course folder, no
gradebook, no submission store, no other slot's workspace. It has its own network namespace with no
interfaces but loopback (no network), its own pid, ipc and uts namespaces, and runs as an
unprivileged uid with no capabilities.

Two ways to get the unprivileged uid, chosen by who runs the worker:
- as root (containers, this machine's CI): bwrap runs privileged without a user namespace and
  `setpriv` switches to a real host uid owned by the slot (unique on the host, see uids.py).
  RLIMIT_NPROC then counts only that slot's processes (it is ignored for root, per-uid on the host).
- as an ordinary user: bwrap uses an unprivileged user namespace (`--unshare-user`, uid 65534
  inside); RLIMIT_NPROC counts the worker user's processes, so give each worker its own user.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
ZYGOTE = Path(__file__).with_name("zygote.py")
#: a `.pth` file with only comments: what coursehub's editable-install `.pth` files read as in the sandbox
NO_COURSEHUB_PTH = Path(__file__).with_name("no_coursehub.pth")

#: Paths inside the sandbox.
WORKSPACE = "/home/student/work"
RUN_DIR = "/run/kernel"
ZYGOTE_PATH = "/opt/coursehub/zygote.py"

#: What runs in a sandbox whose zygote the kernel template forks in (kernel_template.py): it says
#: the sandbox is built, then only holds it open.
PLACEHOLDER = ["/bin/sh", "-c", "echo built && exec sleep infinity >/dev/null"]

#: Small parts of /etc a Python process can use (read-only, only those that exist).
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/fonts", "/etc/mime.types")


@dataclass
class SandboxSpec:
    workspace: Path  # host folder bound read-write at WORKSPACE
    run_dir: Path  # host folder for the kernel's sockets, bound at RUN_DIR
    uid: int  # host uid when run as root; ignored otherwise
    tmp_bytes: int = 64 << 20
    extra_ro: list[Path] = field(default_factory=list)
    #: the python the zygote and kernels run (a course environment's); None: coursehub's own
    python: Path | None = None
    #: what that python needs read-only (its environment and base interpreter); None: coursehub's
    runtime: list[Path] | None = None
    #: shared course data: (host folder, path inside), bound read-only
    data: list[tuple[Path, PurePosixPath]] = field(default_factory=list)


def runtime_paths() -> list[Path]:
    """What the interpreter needs: its base prefix, the virtualenv, and /usr (libc, libs)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path("/usr")}
    exe = Path(sys.executable)
    paths.add(exe.parent.parent.resolve())
    return sorted(paths)


def coursehub_path_files() -> list[Path]:
    """The `.pth` files by which an editable install (a checkout, CI) puts coursehub on the path.
    The sandbox sees them as files of comments only (`NO_COURSEHUB_PTH`): nothing of coursehub runs in it but the zygote, and the
    finder such a file imports cost ~30 ms of CPU in every sandbox's Python start (~8 % of it)."""
    found: list[Path] = []
    for folder in {Path(p) for p in sys.path if p.endswith("-packages")}:
        found += sorted(folder.glob("__editable__.coursehub-*.pth"))
    return sorted(found)


def _ancestors(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        parts = Path(p).parts
        for i in range(2, len(parts)):
            a = str(Path(*parts[:i]))
            if a not in out:
                out.append(a)
    return out


def check() -> str | None:
    """None if the sandbox can start here, else a message saying what to install or allow."""
    import subprocess

    if not os.path.exists(BWRAP):
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap; scripts/setup --test does it)"
    if privileged() and not os.path.exists(SETPRIV):
        return "setpriv is not installed (Debian package util-linux)"
    probe = [BWRAP, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    if not privileged():
        probe[1:1] = ["--unshare-user"]
    proc = subprocess.run(probe, capture_output=True, text=True)
    if proc.returncode != 0:
        return (f"bubblewrap cannot create namespaces here ({proc.stderr.strip() or proc.returncode}); "
                "see docs/operators/sandbox.md")
    return None


def privileged() -> bool:
    return os.geteuid() == 0


def zygote_env(python: str | Path) -> dict[str, str]:
    """The whole environment the zygote starts with in a sandbox (bwrap's --clearenv and --setenv,
    or the kernel template's zygote)."""
    return {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


def sandbox_command(spec: SandboxSpec, python: str | None = None, command: list[str] | None = None,
                    info_fd: int | None = None) -> list[str]:
    """The full argv: bwrap ... [setpriv ...] python zygote.py (or `command`, e.g. PLACEHOLDER).
    With a course environment (`spec.python`), only that environment and its base interpreter are
    visible, not coursehub's. `info_fd`: bwrap writes the sandbox's init pid and namespaces there
    (JSON) as soon as it exists, then closes it."""
    python = str(python or spec.python or sys.executable)
    runtime = runtime_paths() if spec.runtime is None else sorted({*spec.runtime, Path("/usr")})
    ro = [str(p) for p in runtime + list(spec.extra_ro)]
    ro = [p for p in ro if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in ro)]
    data = [(str(host), str(inside)) for host, inside in spec.data]
    targets = ro + [WORKSPACE, RUN_DIR, ZYGOTE_PATH] + [inside for _, inside in data]
    cmd = [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session"]
    if not privileged():
        cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    if info_fd is not None:
        cmd += ["--info-fd", str(info_fd)]
    # The private /tmp comes first: the runtime may itself live below /tmp (a checkout or CI clone
    # there), and a later tmpfs would hide it.
    cmd += ["--perms", "1777", "--size", str(spec.tmp_bytes), "--tmpfs", "/tmp"]
    for d in _ancestors(targets):
        if d != "/tmp" and d not in ro and not any(d.startswith(r + "/") for r in ro):
            cmd += ["--perms", "0755", "--dir", d]
    for p in ro:
        cmd += ["--ro-bind", p, p]
    if spec.runtime is None:  # coursehub's own environment: its editable install is not the sandbox's
        for pth in coursehub_path_files():
            cmd += ["--ro-bind", str(NO_COURSEHUB_PTH), str(pth)]
    for name, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin"), ("sbin", "usr/sbin")):
        if os.path.islink(f"/{name}"):
            cmd += ["--symlink", target, f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            cmd += ["--ro-bind", f"/{name}", f"/{name}"]
    for p in ETC_FILES:
        if os.path.exists(p):
            cmd += ["--ro-bind", p, p]
    for host, inside in data:  # read-only: the student's code can read the dataset, never change it
        cmd += ["--ro-bind", host, inside]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--bind", str(spec.workspace), WORKSPACE,
            "--bind", str(spec.run_dir), RUN_DIR,
            "--ro-bind", str(ZYGOTE), ZYGOTE_PATH,
            "--clearenv"]
    for name, value in zygote_env(python).items():
        cmd += ["--setenv", name, value]
    cmd += ["--chdir", WORKSPACE, "--"]
    if privileged():
        cmd += [SETPRIV, f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    cmd += command or [python, "-s", ZYGOTE_PATH]
    return cmd
