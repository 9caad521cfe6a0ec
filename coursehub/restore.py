"""`coursehub restore DIR`: put a `coursehub backup` back into an empty state folder.

Every file's checksum is verified against the backup's manifest before anything is written; a
state folder (or PostgreSQL database) that already holds data is refused, never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from coursehub.backup import MANIFEST, BackupError, _bar, _pg_tool, libpq_url, parts, sha256


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("backup", type=Path, metavar="DIR", help="a folder written by `coursehub backup`")
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")
    p.add_argument("--state-dir", type=Path, help="the (empty) state folder to restore into (default: from the settings)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    try:
        settings = load_settings(args.settings, state_dir=args.state_dir)
        restore(args.backup, settings, progress=not args.quiet)
    except (ConfigError, BackupError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"restored {args.backup} into {settings.state_dir}; start it with `coursehub up --state-dir "
          f"{settings.state_dir}`")
    return 0


def verify(folder: Path, progress: bool = False) -> dict:
    """The backup's manifest, once every file it lists is present with its checksum (and no other)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{folder} is not a coursehub backup ({MANIFEST}: {e})") from None
    files = manifest.get("files", {})
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    if present - set(files):
        raise BackupError(f"files not in the manifest: {', '.join(sorted(present - set(files))[:5])}")
    with _bar(progress, "verify") as bar:
        for rel, meta in files.items():
            path = folder / rel
            if not path.is_file():
                raise BackupError(f"{rel} is missing from the backup")
            if sha256(path) != meta["sha256"]:
                raise BackupError(f"{rel} does not match its checksum: the backup is damaged")
            bar.update(meta["size"])
    return manifest


def restore(folder: Path, settings: object, progress: bool = True) -> None:
    """Check the backup, check the target is empty, then copy each part to where `settings` keep it."""
    verify(folder, progress)
    state = Path(settings.state_dir)
    if state.exists() and any(state.iterdir()):
        raise BackupError(f"the state folder {state} is not empty; restore into a new or empty folder")
    targets = parts(settings, homes=True)
    for part in targets:
        if part.kind == "postgres" and (folder / part.name).is_dir():
            _require_empty_pg(part.where)
        elif part.kind != "postgres" and (folder / part.name).is_dir() and _nonempty(Path(part.where)):
            raise BackupError(f"{part.where} ({part.name}) already holds data; restore into an empty place")
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    for part in targets:
        src = folder / part.name
        if not src.is_dir():
            continue
        if part.kind == "postgres":
            _pg_restore(src / "dump.pgc", part.where)
        elif part.kind in ("sqlite", "file"):
            dest = Path(part.where)
            dest.parent.mkdir(parents=True, exist_ok=True)
            (only,) = list(src.iterdir())
            shutil.copy2(only, dest)
            os.chmod(dest, 0o600)
        else:
            shutil.copytree(src, Path(part.where), dirs_exist_ok=True)


def _nonempty(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _require_empty_pg(url: str) -> None:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        if inspect(engine).get_table_names():
            raise BackupError("the PostgreSQL database to restore into already has tables; give an empty one")
    finally:
        engine.dispose()


def _pg_restore(dump: Path, url: str) -> None:
    conn, env = libpq_url(url)
    r = subprocess.run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={conn}", str(dump)],
                       capture_output=True, text=True, env={**os.environ, **env})
    if r.returncode != 0:
        raise BackupError(f"pg_restore failed: {r.stderr.strip()[:2000]}")
