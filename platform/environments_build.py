"""Locking and building course environments with uv: `uv pip compile --generate-hashes` resolves the
spec into requirements.lock; `uv venv` + `uv pip sync --require-hashes` builds exactly that lock into
`<state>/envs/<course>-<lockhash>/`, in a temporary folder renamed into place when complete, so a
half-built environment is never used and an unchanged lock is never built twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .environments import (
    LOCK_FILE,
    LOCK_PLATFORM,
    MARKER_FILE,
    LockInfo,
    Spec,
    canonical,
    env_dir,
    envs_dir,
    hub_python,
    is_built,
    lock_header,
    lock_status,
    read_lock,
    server_requirements,
)
from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
#: uv's messages that name the package at fault (its plain, non-terminal output).
_CULPRITS = (
    re.compile(r"Because (?:there is no version of )?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?"
               r"(?:[=<>!~]=?[^\s,]*)? (?:was not found|and you require|depends on|has no)"),
    re.compile(r"Failed to (?:build|download|fetch|install|prepare|read|resolve)[^`]*`([^`=<>!~ ]+)"),
    re.compile(r"Hash mismatch for `([^`=<>!~ ]+)"),
    re.compile(r"requirements? (?:for|of) `?([A-Za-z0-9][A-Za-z0-9._-]*)"),
)


class EnvBuildError(RuntimeError):
    """A lock or build that failed, with the package uv blamed (None if it named none)."""

    def __init__(self, message: str, package: str | None = None, details: str = ""):
        self.package = package
        self.details = details
        super().__init__(message)




def find_uv() -> str:
    """The uv binary: the one the `uv` Python package ships, else uv on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise EnvBuildError("uv is not installed: `pip install uv` (coursehub builds course environments with it)")


def uv_env() -> dict[str, str]:
    """uv's environment: plain output for parsing, and never a Python download from outside the
    package index (runtime.txt must name an installed Python)."""
    return {**os.environ, "NO_COLOR": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def culprit(output: str) -> str | None:
    """The package uv's error output blames, if it names one."""
    for pattern in _CULPRITS:
        m = pattern.search(output)
        if m:
            return m[1]
    return None


def error_summary(output: str) -> str:
    """uv's error and cause lines, without its debug log."""
    keep = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith(("DEBUG", "TRACE", "INFO", " DEBUG"))]
    start = next((i for i, ln in enumerate(keep) if ln.startswith(("error", "×"))), 0)
    return "\n".join(keep[start:]).strip()


def _line_of(path: Path, package: str) -> int | None:
    key = canonical(package)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if m and not line.lstrip().startswith("#") and canonical(m[1]) == key:
            return n
    return None


def _blame(path: Path, output: str, what: str) -> EnvBuildError:
    summary = error_summary(output)
    package = culprit(output)
    if package is None:
        return EnvBuildError(f"{what} failed:\n{summary}", None, output)
    line = _line_of(path, package) if path.is_file() else None
    where = f"{path}, line {line}" if line else f"{path} (a dependency)" if path.is_file() else str(path)
    return EnvBuildError(f"{what} failed at package {package!r} ({where}):\n{summary}", package, output)


# -- lock ---------------------------------------------------------------------------------------------

def lock(spec: Spec, *, upgrade: bool = False, uv: str | None = None) -> LockInfo:
    """Resolve requirements.txt plus coursehub's server packages into requirements.lock (pins and
    hashes for every package, for Linux and the spec's Python). Keeps the existing pins unless
    `upgrade`, so locking twice gives the same file."""
    uv = uv or find_uv()
    server = server_requirements()
    with tempfile.TemporaryDirectory(prefix="coursehub-lock-") as tmp:
        work = Path(tmp)
        shutil.copyfile(spec.folder / "requirements.txt", work / "requirements.txt")
        (work / "coursehub-server.in").write_text("# added by coursehub to every course\n" + "\n".join(server) + "\n")
        if spec.lock_path.is_file() and not upgrade:
            shutil.copyfile(spec.lock_path, work / LOCK_FILE)  # uv prefers the pins already there
        cmd = [uv, "pip", "compile", "requirements.txt", "coursehub-server.in", "--output-file", LOCK_FILE,
               "--generate-hashes", "--no-header", "--python-version", spec.python,
               "--python-platform", LOCK_PLATFORM, "--color", "never", "--quiet"]
        if upgrade:
            cmd.append("--upgrade")
        proc = subprocess.run(cmd, cwd=work, env=uv_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise _blame(spec.folder / "requirements.txt", proc.stderr + proc.stdout, f"locking {spec.course_id}")
        body = (work / LOCK_FILE).read_text(encoding="utf-8")
    text = lock_header(spec, server) + body
    tmp_lock = spec.lock_path.with_name(f".{LOCK_FILE}.tmp")
    tmp_lock.write_text(text, encoding="utf-8")
    os.replace(tmp_lock, spec.lock_path)
    info = read_lock(spec.lock_path)
    assert info is not None
    return info


def pinned_packages(lock_path: Path) -> list[str]:
    """name==version of every package in the lock."""
    return [f"{m[1]}=={m[2]}" for m in _PINNED.finditer(lock_path.read_text(encoding="utf-8"))]


# -- build --------------------------------------------------------------------------------------------

def find_python(version: str, uv: str) -> str:
    """An installed interpreter of `version` (X.Y): the hub's own when it matches, else uv's search."""
    if version == hub_python():
        base = Path(getattr(sys, "_base_executable", "") or sys.executable)
        if base.exists():
            return str(base)
    proc = subprocess.run([uv, "python", "find", "--system", version], env=uv_env(), capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EnvBuildError(f"Python {version} (runtime.txt) is not installed on this machine; install it "
                                f"or change runtime.txt (this hub runs Python {hub_python()})")
    return proc.stdout.strip().splitlines()[-1]


def _coursehub_requirement() -> list[str]:
    """How the course environment gets coursehub itself (its exchange plugin and Assignments panel
    run in user servers): editable from this checkout, else the same version from the index."""
    from coursehub import __version__
    from coursehub.paths import SOURCE_ROOT

    return ["-e", str(SOURCE_ROOT)] if SOURCE_ROOT is not None else [f"coursehub=={__version__}"]


class _Progress:
    """A tqdm bar over the build's steps and the lock's packages (quiet when not on a terminal)."""

    def __init__(self, packages: list[str], enabled: bool):
        from tqdm import tqdm

        self.names = {p.split("==")[0].lower(): p for p in packages}
        self.seen: set[str] = set()
        self.bar = tqdm(total=len(packages) + 4, unit="step", disable=None if enabled else True,
                        desc="environment", file=sys.stderr, leave=True)

    def step(self, what: str) -> None:
        self.bar.set_postfix_str(what)
        self.bar.update(1)

    def line(self, text: str) -> None:
        for token in re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)==[^\s,`]+", text):
            key = token.lower()
            if key in self.names and key not in self.seen:
                self.seen.add(key)
                self.bar.set_postfix_str(self.names[key])
                self.bar.update(1)

    def finish_packages(self) -> None:
        self.bar.update(len(self.names) - len(self.seen))
        self.seen = set(self.names)

    def close(self) -> None:
        self.bar.close()


def _stream(cmd: list[str], on_line: Callable[[str], None]) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, env=uv_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        on_line(line)
    return proc.wait(), "".join(lines)


def build(spec: Spec, state_dir: Path, *, force: bool = False, progress: bool = True,
          uv: str | None = None, warn: Callable[[str], None] = lambda s: None) -> Path:
    """Build (or reuse) the course environment for the spec's current lock; returns its folder."""
    problems, warnings = lock_status(spec)
    lock_info = read_lock(spec.lock_path)
    if lock_info is None:
        raise ConfigError(problems)
    for p in problems:  # a stale lock is still what builds use: say so, build it
        warn(f"{p} (building the lock as it is)")
    for w in warnings + list(spec.warnings):
        warn(w)
    final = env_dir(state_dir, spec.course_id, lock_info)
    if is_built(final) and not force:
        return final
    uv = uv or find_uv()
    envs_dir(state_dir).mkdir(parents=True, exist_ok=True)
    packages = pinned_packages(spec.lock_path)
    work = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=envs_dir(state_dir)))
    os.chmod(work, 0o755)  # the autograde sandbox runs kernels as other, unprivileged uids
    bar = _Progress(packages, progress)
    try:
        python = find_python(lock_info.python or spec.python, uv)
        bar.step("python")
        _check(subprocess.run([uv, "venv", "--relocatable", "--quiet", "--allow-existing", "--python", python, str(work)],
                              env=uv_env(), capture_output=True, text=True), spec.lock_path, "creating the virtual environment")
        bar.step("venv")
        rc, out = _stream([uv, "pip", "sync", "--require-hashes", "--python", str(work / "bin" / "python"),
                           "--color", "never", "-v", str(spec.lock_path)], bar.line)
        if rc != 0:
            raise _blame(spec.lock_path, out, f"building {spec.course_id}'s environment")
        bar.finish_packages()
        _check(subprocess.run([uv, "pip", "install", "--no-deps", "--quiet", "--python", str(work / "bin" / "python"),
                               *_coursehub_requirement()], env=uv_env(), capture_output=True, text=True),
               spec.lock_path, "installing coursehub into the environment")
        bar.step("coursehub")
        _check(subprocess.run([str(work / "bin" / "python"), "-c", "import ipykernel, jupyterhub, nbgrader, "
                               "coursehub.grading.exchange"], capture_output=True, text=True),
               spec.lock_path, "checking the environment")
        (work / MARKER_FILE).write_text(json.dumps({
            "course": spec.course_id, "lock_sha256": lock_info.sha256, "python": lock_info.python,
            "packages": len(packages)}, indent=2) + "\n")
        bar.step("ready")
        _install(work, final, force)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        bar.close()
    return final


def _check(proc: subprocess.CompletedProcess, path: Path, what: str) -> None:
    if proc.returncode != 0:
        raise _blame(path, (proc.stderr or "") + (proc.stdout or ""), what)


def _install(work: Path, final: Path, force: bool) -> None:
    """Rename the finished build into place; a concurrent build that got there first wins."""
    old = None
    if force and final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, old)
    try:
        os.rename(work, final)
    except OSError:
        if not is_built(final):
            raise
        shutil.rmtree(work, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_course(settings: Settings, course_id: str, *, progress: bool = True,
                 warn: Callable[[str], None] = lambda s: None) -> Path | None:
    """Build (or reuse) a course's environment; its python, or None for a course without an
    environment folder. For `coursehub up` before it starts the hub."""
    from .environments import load_spec

    spec = load_spec(Path(settings.courses_dir) / course_id)
    if spec is None:
        return None
    return build(spec, Path(settings.state_dir), progress=progress, warn=warn) / "bin" / "python"
