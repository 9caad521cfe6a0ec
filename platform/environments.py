"""Course environments, Binder-style: `courses/<id>/environment/` holds the files repo2docker reads,
`requirements.lock` pins them (with hashes), and every build — the local virtual environment and the
course image — installs exactly that lock, so students and the autograder run the same packages.

This module is the part other code calls: reading and checking the spec, the lock's header and
staleness, and where a course's built environment lives (`course_python`). Locking, building and
images are in `environments_build` and `environments_image`; shared data in `environments_data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement

from .errors import ConfigError, Problem

if TYPE_CHECKING:
    from .settings import Settings

SPEC_DIR = "environment"
LOCK_FILE = "requirements.lock"
MARKER_FILE = ".coursehub-env.json"
#: What a server (or an image) says when it runs no course environment: coursehub's own.
DEFAULT_ENVIRONMENT = "default"
#: Set in course images (which have no marker in the interpreter's prefix) to the lock's sha256.
ENVIRONMENT_VAR = "COURSEHUB_ENVIRONMENT"
#: Locks are resolved for the platform user servers, images and sandboxes run on.
LOCK_PLATFORM = "linux"
#: Files that go into the spec hash (and so into the lock, the env name and the image tag).
SPEC_FILES = ("requirements.txt", "runtime.txt", "apt.txt", "postBuild")
#: What each build honours: the local build can't install OS packages or run a build script.
SUPPORT = {
    "requirements.txt": "local build and image (through the lock)",
    "runtime.txt": "local build and image",
    "apt.txt": "image only (the local build warns)",
    "postBuild": "image only (the local build warns)",
}
#: repo2docker reads these too; coursehub can't lock them, so they would split student and grader.
UNSUPPORTED = {
    "environment.yml": "conda environments can't be locked with hashes by coursehub; list the packages in requirements.txt",
    "environment.yaml": "conda environments can't be locked with hashes by coursehub; list the packages in requirements.txt",
    "Pipfile": "use requirements.txt",
    "Pipfile.lock": "use requirements.txt (coursehub writes its own requirements.lock)",
    "setup.py": "use requirements.txt",
    "pyproject.toml": "use requirements.txt",
    "install.R": "R environments are not supported",
    "DESCRIPTION": "R environments are not supported",
    "Project.toml": "Julia environments are not supported",
    "default.nix": "Nix environments are not supported",
    "Dockerfile": "a Dockerfile replaces repo2docker's whole build; coursehub builds from the lock instead",
    "start": "a start script would run in images only, not in local servers or the grader",
}
#: The user-server side coursehub runs in every course environment, pinned to the hub's own versions.
SERVER_PINNED = ("jupyterhub", "jupyterlab", "nbgrader", "ipykernel", "nbgitpuller")
#: What coursehub's exchange plugin imports beyond those; taken from coursehub's own requirements.
SERVER_RANGED = ("pydantic", "pyyaml")
_OPTIONS = re.compile(r"^\s*(-[A-Za-z]|--[a-z-]+)")
_RUNTIME = re.compile(r"^python-(3)\.(\d+)(?:\.\d+)?$")


@dataclass(frozen=True)
class Spec:
    """A course's environment folder, read and checked."""

    course_id: str
    folder: Path
    python: str  # "3.11": runtime.txt's version, else the hub's
    requirements: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE

    def files(self) -> dict[str, Path]:
        return {n: self.folder / n for n in SPEC_FILES if (self.folder / n).is_file()}

    def digests(self) -> dict[str, str]:
        """{file name: sha256} of the spec files: what the lock records to detect a stale lock."""
        return {n: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for n, p in self.files().items()}


@dataclass(frozen=True)
class LockInfo:
    """The header coursehub writes at the top of requirements.lock, and the lock's identity."""

    path: Path
    sha256: str
    python: str | None
    digests: dict[str, str] = field(default_factory=dict)
    server: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The lock's hash as used in env folder names and image tags."""
        return self.sha256[:12]


class EnvironmentNotBuilt(RuntimeError):
    """A course has an environment spec but no built environment for its current lock."""


def hub_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def spec_folder(course_folder: Path) -> Path:
    return course_folder / SPEC_DIR


def has_spec(course_folder: Path) -> bool:
    return spec_folder(course_folder).is_dir()


def load_spec(course_folder: Path) -> Spec | None:
    """The course's environment spec, or None for a course using the default environment.
    Raises ConfigError naming file, line and what was expected."""
    folder = spec_folder(course_folder)
    if not folder.is_dir():
        return None
    problems: list[Problem] = []
    warnings: list[str] = []
    for name, why in UNSUPPORTED.items():
        if (folder / name).exists():
            problems.append(Problem(folder / name, "", f"not supported by coursehub: {why}"))
    req_file = folder / "requirements.txt"
    requirements: list[str] = []
    if not req_file.is_file():
        problems.append(Problem(req_file, "", "file not found: an environment folder needs a requirements.txt "
                                              "(one package per line, e.g. 'numpy>=1.26')"))
    else:
        requirements = _parse_requirements(req_file, problems)
    python = _parse_runtime(folder / "runtime.txt", problems) if (folder / "runtime.txt").exists() else hub_python()
    if (folder / "apt.txt").is_file():
        _check_apt(folder / "apt.txt", problems)
        warnings.append(f"{folder / 'apt.txt'}: OS packages are installed in the image only, not by the local build")
    if (folder / "postBuild").is_file():
        warnings.append(f"{folder / 'postBuild'}: runs in the image build only, not in the local build")
    known = set(SPEC_FILES) | set(UNSUPPORTED) | {LOCK_FILE}
    for p in sorted(folder.iterdir()):
        if p.name not in known and not p.name.lower().startswith("readme") and not p.name.startswith("."):
            warnings.append(f"{p}: not an environment file coursehub reads (expected one of {', '.join(SPEC_FILES)})")
    if problems:
        raise ConfigError(problems)
    return Spec(course_folder.name, folder, python, tuple(requirements), tuple(warnings))


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) with comments dropped and backslash continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = n
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        line = (pending + text).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _parse_requirements(path: Path, problems: list[Problem]) -> list[str]:
    try:
        lines = _logical_lines(path)
    except UnicodeDecodeError:
        problems.append(Problem(path, "", "file is not UTF-8 text"))
        return []
    seen: dict[str, int] = {}
    out: list[str] = []
    for n, line in lines:
        where = f"line {n}"
        if _OPTIONS.match(line):
            problems.append(Problem(path, where, f"{line.split()[0]!r}: pip options, includes and editable installs are "
                                                 "not supported; write one package per line, e.g. 'numpy>=1.26'"))
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            problems.append(Problem(path, where, f"not a package requirement (expected e.g. 'numpy>=1.26'): {e}"))
            continue
        if req.url and not req.url.startswith(("https://", "git+https://")):
            problems.append(Problem(path, where, f"{req.name}: only https:// URLs can be locked, got {req.url!r}"))
            continue
        key = canonical(req.name)
        if key in seen:
            problems.append(Problem(path, where, f"{req.name} is already listed on line {seen[key]}"))
            continue
        seen[key] = n
        out.append(str(req))
    return out


def _parse_runtime(path: Path, problems: list[Problem]) -> str:
    lines = _logical_lines(path) if path.is_file() else []
    if len(lines) != 1 or not _RUNTIME.match(lines[0][1]):
        where = f"line {lines[0][0]}" if lines else ""
        got = lines[0][1] if lines else "an empty file"
        problems.append(Problem(path, where, f"expected one line 'python-3.X' (e.g. python-3.11), got {got!r}"))
        return hub_python()
    major, minor = _RUNTIME.match(lines[0][1]).groups()  # type: ignore[union-attr]
    if int(minor) < 10:
        problems.append(Problem(path, f"line {lines[0][0]}", f"Python {major}.{minor} is too old for JupyterHub "
                                                            "and nbgrader; use python-3.10 or newer"))
    return f"{major}.{minor}"


def _check_apt(path: Path, problems: list[Problem]) -> None:
    for n, line in _logical_lines(path):
        for name in line.split():
            if not re.match(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$", name):
                problems.append(Problem(path, f"line {n}", f"{name!r} is not a Debian package name"))


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def server_requirements() -> list[str]:
    """What coursehub adds to every course environment: the Jupyter server stack pinned to this
    hub's installed versions (so user servers match the hub), and the libraries its exchange plugin
    imports, with coursehub's own version ranges."""
    out = [f"{name}=={metadata.version(name)}" for name in SERVER_PINNED]
    try:
        declared = [Requirement(r) for r in metadata.requires("coursehub") or []]
    except metadata.PackageNotFoundError:
        declared = []
    for name in SERVER_RANGED:
        req = next((r for r in declared if canonical(r.name) == name and not r.marker), None)
        out.append(f"{req.name}{req.specifier}" if req else name)
    return out


_HEADER = re.compile(r"^# (python|spec|server): (.*)$")


def read_lock(path: Path) -> LockInfo | None:
    """The lock's header and hash, or None if there is no lock."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    python, digests, server = None, {}, ()
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("#"):
            break
        m = _HEADER.match(line)
        if not m:
            continue
        if m[1] == "python":
            python = m[2].strip()
        elif m[1] == "spec":
            name, _, digest = m[2].partition(" ")
            digests[name] = digest.strip()
        else:
            server = tuple(m[2].split())
    return LockInfo(path, hashlib.sha256(data).hexdigest(), python, digests, server)


def lock_header(spec: Spec, server: list[str]) -> str:
    """The header `env lock` writes: what the lock was made from, so staleness is a comparison."""
    lines = [
        f"# coursehub environment lock for course {spec.course_id}: written by `coursehub env lock "
        f"{spec.course_id}`; do not edit.",
        "# Local environments and course images install exactly these packages (pip/uv with --require-hashes).",
        f"# python: {spec.python}",
        f"# platform: {LOCK_PLATFORM}",
        *(f"# spec: {name} {digest}" for name, digest in spec.digests().items()),
        f"# server: {' '.join(server)}",
    ]
    return "\n".join(lines) + "\n"


def lock_status(spec: Spec) -> tuple[list[Problem], list[str]]:
    """(problems, warnings) about the spec's lock: missing or made from other files is a problem (a
    build would not match the spec); made for another hub version is a warning."""
    cmd = f"coursehub env lock {spec.course_id}"
    info = read_lock(spec.lock_path)
    if info is None:
        return [Problem(spec.lock_path, "lock", f"no lock yet: run `{cmd}`")], []
    if not info.digests:
        return [Problem(spec.lock_path, "lock", f"not a lock written by coursehub (no header): run `{cmd}`")], []
    now = spec.digests()
    changed = sorted(n for n in set(now) | set(info.digests) if now.get(n) != info.digests.get(n))
    problems = []
    if changed:
        what = ", ".join(f"{n} ({'added' if n not in info.digests else 'removed' if n not in now else 'changed'})"
                         for n in changed)
        problems.append(Problem(spec.lock_path, "lock", f"older than the spec: {what} since locking; run `{cmd}`"))
    elif info.python != spec.python:
        problems.append(Problem(spec.lock_path, "lock", f"locked for Python {info.python}, the spec now needs "
                                                   f"{spec.python}; run `{cmd}`"))
    warnings = []
    ours = set(server_requirements())
    stale = [r for r in info.server if "==" in r and r not in ours]
    if stale:
        warnings.append(f"{spec.lock_path}: made for another coursehub ({', '.join(stale)}; this hub has "
                        f"{', '.join(r for r in ours if '==' in r)}); run `{cmd}` so user servers match the hub")
    return problems, warnings


def check_course(course_folder: Path) -> tuple[list[Problem], list[str]]:
    """Everything `coursehub validate` reports about a course's environment and data: (problems, warnings)."""
    from .environments_data import data_problems

    problems: list[Problem] = list(data_problems(course_folder))
    warnings: list[str] = []
    try:
        spec = load_spec(course_folder)
    except ConfigError as e:
        return problems + e.problems, warnings
    if spec is not None:
        warnings.extend(spec.warnings)
        p, w = lock_status(spec)
        problems += p
        warnings += w
    return problems, warnings


def env_name(course_id: str, lock: LockInfo) -> str:
    """`<course>-<12 hex of the lock's sha256>`: one folder per lock, so a new lock never disturbs
    servers running in the old environment and an unchanged lock reuses the built one."""
    return f"{course_id}-{lock.short}"


def envs_dir(state_dir: Path) -> Path:
    return state_dir / "envs"


def env_dir(state_dir: Path, course_id: str, lock: LockInfo) -> Path:
    return envs_dir(state_dir) / env_name(course_id, lock)


def is_built(folder: Path) -> bool:
    """Complete builds have the marker, written last before the atomic rename."""
    return (folder / MARKER_FILE).is_file() and (folder / "bin" / "python").exists()


def course_python(settings: Settings, course_id: str) -> Path | None:
    """The python of the course's built environment, for user servers, kernels and the autograde
    sandbox; None if the course has no environment folder (it uses the default environment).
    Raises EnvironmentNotBuilt (with the command to run) when the course has a spec but its current
    lock is missing or not built: running it elsewhere would grade with the wrong packages."""
    course_folder = Path(settings.courses_dir) / course_id
    if not has_spec(course_folder):
        return None
    lock = read_lock(spec_folder(course_folder) / LOCK_FILE)
    if lock is None:
        raise EnvironmentNotBuilt(f"course {course_id!r} has an environment folder but no lock: "
                                  f"run `coursehub env lock {course_id}` then `coursehub env build {course_id}`")
    folder = env_dir(Path(settings.state_dir), course_id, lock)
    if not is_built(folder):
        raise EnvironmentNotBuilt(f"the environment of course {course_id!r} is not built for its current lock "
                                  f"({lock.short}): run `coursehub env build {course_id}`")
    return folder / "bin" / "python"


def runtime_paths(python: Path) -> list[Path]:
    """What a sandbox must bind read-only to run `python` of a built environment: the environment
    and the base interpreter's installation it links to (from pyvenv.cfg's `home`)."""
    env = python.parent.parent
    paths = [env]
    cfg = env / "pyvenv.cfg"
    if cfg.is_file():
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                paths.append(Path(value.strip()).resolve().parent)
    return paths


def environment_id(lock: LockInfo | None) -> str:
    """How an environment is named in parity checks: its lock's sha256, or `default`."""
    return lock.sha256 if lock is not None else DEFAULT_ENVIRONMENT


def course_environment_id(course_folder: Path) -> str:
    """The environment a course's submissions must come from: its current lock's sha256, or
    `default` for a course without an environment folder (or without a lock yet)."""
    if not has_spec(course_folder):
        return DEFAULT_ENVIRONMENT
    return environment_id(read_lock(spec_folder(course_folder) / LOCK_FILE))


def running_environment(prefix: str | None = None) -> str:
    """The environment this process runs in: `$COURSEHUB_ENVIRONMENT` (course images), else the
    lock hash in the marker `env build` leaves in the environment's prefix, else `default`.
    The exchange client sends it with each submission so the grader can check parity."""
    from_env = os.environ.get(ENVIRONMENT_VAR, "").strip().lower()
    if re.fullmatch(r"[0-9a-f]{64}", from_env):
        return from_env
    try:
        marker = json.loads((Path(prefix or sys.prefix) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return DEFAULT_ENVIRONMENT
    lock_sha = str(marker.get("lock_sha256", "")) if isinstance(marker, dict) else ""
    return lock_sha if re.fullmatch(r"[0-9a-f]{64}", lock_sha) else DEFAULT_ENVIRONMENT


def catalog_digest(catalog: Iterable[Any]) -> str:
    """A digest of the course definitions and each course's environment lock: the hub on Kubernetes
    compares the catalog in its image with the one the Helm values were rendered from. The locks
    count because the worker reads them from that image: a course re-locked after the hub image was
    built would have its submissions refused as made in another environment."""
    def lock_hash(course: Any) -> str | None:
        lock = course.folder / SPEC_DIR / LOCK_FILE if course.folder is not None else None
        return hashlib.sha256(lock.read_bytes()).hexdigest() if lock is not None and lock.is_file() else None

    courses = sorted(catalog, key=lambda c: c.id)
    blob = json.dumps([[c.model_dump(mode="json"), lock_hash(c)] for c in courses], sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
