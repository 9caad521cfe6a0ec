"""`coursehub backup --out DIR`: a consistent copy of everything the platform keeps, taken while it runs.

What is copied (see docs/operators/backups.md): the hub database (users, groups, tokens), the LTI
tables, the grading database, the submission store, every course's nbgrader folder with its
gradebook, the LTI keys, the cookie secret and (unless `--without-homes`) the users' homes. SQLite
databases are copied with SQLite's online backup API (a snapshot of one moment, even mid-write);
PostgreSQL ones with `pg_dump`. The grading database is copied *before* the submission store: a
blob is stored before the row that names it is committed and blobs never change, so every row in
the copy finds its blob. `manifest.json` lists every file with its SHA-256; `coursehub restore`
checks them all before it writes anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FORMAT = 1
MANIFEST = "manifest.json"
SKIP_NAMES = {".up.lock", "proxy.pid"}
SKIP_DIRS = {"tmp"}  # the submission store's partial uploads


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder to write the backup into (new or empty)")
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")
    p.add_argument("--state-dir", type=Path, help="the state folder to back up (default: from the settings)")
    p.add_argument("--without-homes", action="store_true", help="leave out the users' home folders")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@dataclass(frozen=True)
class Part:
    """One thing the platform keeps: its name in the backup, and where it lives (a path or a DB URL)."""

    name: str
    kind: str  # "sqlite" | "postgres" | "tree" | "file"
    where: str


def parts(settings: object, homes: bool = True) -> list[Part]:
    """What to back up for these settings, in the order that keeps the copy consistent."""
    from coursehub.platform.lti.services import store_url

    state = Path(settings.state_dir)
    out: list[Part] = []
    seen_pg: set[str] = set()
    for name, url in (("hub", settings.hub_db_url()), ("lti", store_url(settings)),
                      ("grading", settings.grading_db_url())):
        if url.startswith("sqlite"):
            out.append(Part(name, "sqlite", url.split("///", 1)[1]))
        elif url not in seen_pg:  # the LTI tables live in the hub's PostgreSQL database when it has one
            seen_pg.add(url)
            out.append(Part(name, "postgres", url))
    out += [
        Part("store", "tree", str(settings.storage_dir())),
        Part("course-dirs", "tree", str(state / "course-dirs")),
        Part("lti-keys", "tree", str(state / "lti")),
        Part("cookie-secret", "file", str(state / "jupyterhub_cookie_secret")),
    ]
    if homes:
        out.append(Part("homes", "tree", str(settings.homes_dir())))
    return out


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    try:
        settings = load_settings(args.settings, state_dir=args.state_dir)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty; give a new folder", file=sys.stderr)
        return 1
    if not Path(settings.state_dir).is_dir():
        print(f"error: there is no state folder at {settings.state_dir}", file=sys.stderr)
        return 1
    try:
        manifest = backup(settings, out, homes=not args.without_homes, progress=not args.quiet)
    except BackupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"backup of {settings.state_dir}: {len(manifest['files'])} files, "
          f"{_size(sum(f['size'] for f in manifest['files'].values()))} in {out}")
    return 0


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why."""


def backup(settings: object, out: Path, homes: bool = True, progress: bool = True) -> dict:
    """Write the backup of `settings`' platform into `out` and return its manifest."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # it holds the cookie secret, the tool key and every student's work
    selected = parts(settings, homes)
    items: dict[str, dict] = {}
    with _bar(progress, "backup") as bar:
        for part in selected:
            target = out / part.name
            if part.kind == "sqlite":
                if Path(part.where).exists():
                    target.mkdir()
                    _sqlite_copy(Path(part.where), target / Path(part.where).name)
            elif part.kind == "postgres":
                target.mkdir()
                _pg_dump(part.where, target / "dump.pgc")
            elif part.kind == "file":
                if Path(part.where).is_file():
                    target.mkdir()
                    shutil.copy2(part.where, target / Path(part.where).name)
            else:
                _copy_tree(Path(part.where), target, bar)
            items[part.name] = {"kind": part.kind, "present": target.exists()}
            bar.set_postfix_str(part.name)
    files = {}
    with _bar(progress, "checksums") as bar:
        for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST):
            files[path.relative_to(out).as_posix()] = {"sha256": sha256(path), "size": path.stat().st_size}
            bar.update(path.stat().st_size)
    from coursehub import __version__

    manifest = {"format": FORMAT, "coursehub": __version__, "created": dt.datetime.now(dt.UTC).isoformat(),
                "state_dir": str(settings.state_dir), "parts": items, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _sqlite_copy(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API); sidecar files not needed."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=60)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)  # one step: a read snapshot of one moment (writers wait at most briefly)
    finally:
        target.close()
        source.close()


def _copy_tree(src: Path, dest: Path, bar: object) -> None:
    """Files under `src`; SQLite databases among them (gradebooks) through the backup API."""
    if not src.is_dir():
        return
    for path in _walk(src):
        rel = path.relative_to(src)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if _is_sqlite(path):
            _sqlite_copy(path, target)
        elif path.suffix in (".db-journal", ".db-wal", ".db-shm") or path.name.endswith(("-journal", "-wal", "-shm")):
            continue  # part of a database copied through the backup API
        else:
            try:
                shutil.copy2(path, target)
            except FileNotFoundError:
                continue  # removed while we walked (a replaced release, a temp file)
        bar.update(target.stat().st_size if target.exists() else 0)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) == root and d in SKIP_DIRS))
        for name in sorted(names):
            path = Path(folder) / name
            if name not in SKIP_NAMES and path.is_file() and not path.is_symlink():
                yield path


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as pg_dump takes it, the password moved into the environment (not argv)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    env = {"PGPASSWORD": u.password} if u.password else {}
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _pg_dump(url: str, dest: Path) -> None:
    conn, env = libpq_url(url)
    r = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dest}", conn],
                       capture_output=True, text=True, env={**os.environ, **env})
    if r.returncode != 0:
        raise BackupError(f"pg_dump failed: {r.stderr.strip()[:2000]}")


def _pg_tool(name: str) -> str:
    import glob

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, name).exists():
            return str(Path(folder, name))
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} was not found (install the PostgreSQL client tools)")
    return found


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bar(enabled: bool, what: str):  # noqa: ANN202 - a tqdm bar, or a silent stand-in
    from tqdm import tqdm

    return tqdm(desc=what, unit="B", unit_scale=True, disable=not enabled, file=sys.stderr, leave=False)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
