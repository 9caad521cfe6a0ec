"""Safe tar archives for the exchange wire format (both the service and the plugin use this).

Uploads are plain or gzip-compressed tar files. Reading one never touches the file system: members
come back as {relative path: bytes} after these checks, each a clear `ArchiveError`:
regular files and folders only (no links, devices, fifos), relative paths in the safe alphabet of
`coursehub.grading.ids` (no absolute paths, no `..`), at most `max_entries` members, each file at most
`max_file_bytes`, all of them together at most `max_total_bytes`, and gzip input may not expand
beyond that total either. Notebooks are checked against the nbformat schema.
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ids import BadId, check_relpath

HEADER_SLACK = 1024  # bytes of tar headers allowed per member (bounds the body and gzip expansion)


@dataclass(frozen=True)
class UploadLimits:
    """How big an uploaded or fetched archive may be; not the sandbox's `KernelLimits`."""

    max_file_bytes: int = 20 * 2**20
    max_total_bytes: int = 100 * 2**20
    max_entries: int = 500


class ArchiveError(ValueError):
    """An upload that is refused; `status` is the HTTP status the service answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise ArchiveError(f"the upload is not a valid gzip file: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ArchiveError(f"the upload expands beyond the limit of {_mib(limit)}", status=413)
    return out


def read_archive(data: bytes, limits: UploadLimits) -> dict[str, bytes]:
    """Validate a tar (or tar.gz) upload and return its files by relative path."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip_bounded(data, limits.max_total_bytes + limits.max_entries * HEADER_SLACK + 10240)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as e:
        raise ArchiveError(f"the upload is not a tar archive: {e}") from None
    files: dict[str, bytes] = {}
    total = 0
    count = 0
    with tar:
        try:
            for member in tar:
                count += 1
                if count > limits.max_entries:
                    raise ArchiveError(f"too many files: at most {limits.max_entries} are allowed", status=413)
                name = member.name[2:] if member.name.startswith("./") else member.name
                name = name.rstrip("/") if member.isdir() else name
                if member.issym() or member.islnk():
                    raise ArchiveError(f"{member.name!r} is a link; links are not allowed")
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"{member.name!r} is not a regular file or folder")
                if name in ("", "."):
                    continue
                try:
                    check_relpath(name)
                except BadId as e:
                    raise ArchiveError(str(e)) from None
                if member.isdir():
                    continue
                if member.size > limits.max_file_bytes:
                    raise ArchiveError(
                        f"{name!r} is {_mib(member.size)}; the limit per file is {_mib(limits.max_file_bytes)}",
                        status=413,
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArchiveError(
                        f"the files add up to more than the limit of {_mib(limits.max_total_bytes)}", status=413
                    )
                if name in files:
                    raise ArchiveError(f"{name!r} appears twice in the upload")
                fh = tar.extractfile(member)
                content = fh.read(member.size + 1) if fh else b""
                if len(content) != member.size:
                    raise ArchiveError(f"{name!r} is truncated")
                files[name] = content
        except tarfile.TarError as e:
            raise ArchiveError(f"the upload is not a valid tar archive: {e}") from None
    return files


def pack(files: dict[str, bytes] | Iterable[tuple[str, bytes]], mtime: float = 0) -> bytes:
    """An uncompressed tar of `files` (path -> bytes), members in the given order."""
    buf = io.BytesIO()
    items = files.items() if isinstance(files, dict) else files
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in items:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def collect_dir(
    root: Path,
    ignore: Iterable[str] = (),
    include: Iterable[str] = ("*",),
    max_file_bytes: int | None = None,
    log=None,  # noqa: ANN001 - a logging.Logger-like object
) -> dict[str, bytes]:
    """Files below `root` as {relative path: bytes}, skipping what nbgrader's own copy would skip
    (`CourseDirectory.ignore`/`include`/`max_file_size`), hidden files, and links."""
    ignore = list(ignore)
    include = list(include)
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not _matches(d, ignore) and not os.path.islink(os.path.join(dirpath, d))
        )
        for fname in sorted(filenames):
            full = os.path.join(dirpath, fname)
            if fname.startswith(".") or _matches(fname, ignore) or os.path.islink(full):
                if log and not fname.startswith(".ipynb") and fname.startswith("."):
                    log.warning("Skipping hidden file %s", fname)
                continue
            if not _matches(fname, include):
                continue
            size = os.path.getsize(full)
            if max_file_bytes is not None and size > max_file_bytes:
                if log:
                    log.warning("Skipping %s: %d bytes is over the limit of %d", fname, size, max_file_bytes)
                continue
            rel = fname if rel_dir == "." else f"{rel_dir}/{fname}".replace(os.sep, "/")
            with open(full, "rb") as fh:
                out[rel] = fh.read()
    return out


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def write_files(dest: Path, files: dict[str, bytes], *, only_missing: bool = False) -> list[str]:
    """Write validated relative paths below `dest`; returns the paths written."""
    written = []
    dest = Path(dest)
    for rel, content in files.items():
        check_relpath(rel)
        target = dest.joinpath(*rel.split("/"))
        if only_missing and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(content)
        written.append(rel)
    return written


_validators: dict[int, object] = {}


def validate_notebook(name: str, nb: Any) -> None:
    """Refuse anything that is not a valid nbformat-4 notebook (nbformat's JSON schema); `nb` is
    the parsed JSON (the caller parses it once, with its own bounds)."""
    from nbformat.validator import get_validator

    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        raise ArchiveError(f"{name!r} is not a version 4 notebook (nbformat 4 is required)")
    minor = nb.get("nbformat_minor")
    if not isinstance(minor, int):
        raise ArchiveError(f"{name!r} has no valid nbformat_minor")
    validator = _validators.get(minor)
    if validator is None:
        try:
            validator = get_validator(4, min(minor, 5), name="fastjsonschema")
        except Exception:  # noqa: BLE001 - fall back to the reference validator
            validator = get_validator(4, min(minor, 5))
        _validators[minor] = validator
    try:
        validator.validate(nb)  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - every validator error means "invalid notebook"
        message = str(e).splitlines()[0][:300]
        raise ArchiveError(f"{name!r} is not a valid notebook: {message}") from None


def validate_notebooks(notebooks: Mapping[str, Any]) -> list[str]:
    """Validate parsed notebooks (by relative path); returns the notebook ids (top-level notebooks,
    no suffix)."""
    ids = []
    for name, nb in notebooks.items():
        validate_notebook(name, nb)
        if "/" not in name:
            ids.append(name[: -len(".ipynb")])
    return sorted(ids)
