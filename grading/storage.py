"""Durable blob storage for the exchange: released files, submissions and feedback.

Every blob is written to a temporary file in the same file system, fsynced, renamed into place and
its folder fsynced, so a blob that exists under its final name is complete. The database row that
makes a blob visible is committed only after `put` returns (see `coursehub.grading.service.core`);
a crash in between leaves at most an orphan file that nothing refers to, never a half-visible one.
Content is addressed by a random id and checksummed with SHA-256.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import metrics
from .ids import check_course_id

KINDS = ("release", "submission", "feedback")
#: Errors that mean "no space": the disk, or the quota of the store's user.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
NUL = b"\0"


class StoreFull(OSError):
    """The store's file system has no space left; nothing was stored (no partial file remains)."""


@dataclass(frozen=True)
class Blob:
    """A stored file: where it is (relative to the storage root), its size and checksum."""

    path: str
    size: int
    sha256: str


class BlobStore:
    """Blobs under `root/blobs/<course>/<kind>/<xx>/<id>`; temporary files under `root/tmp`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        self._resolved_root = self.root.resolve()  # once, not per read of a collection

    def put(self, course_id: str, kind: str, data: bytes, suffix: str = ".tar", sha256: str | None = None) -> Blob:
        """Store `data` durably and return its Blob; the caller commits the row that refers to it.
        `sha256`: the caller's digest of `data` where it has one (a wrong one makes reads fail, never pass)."""
        check_course_id(course_id)
        if kind not in KINDS:
            raise ValueError(f"unknown blob kind {kind!r}")
        name = uuid.uuid4().hex
        rel = Path("blobs") / course_id / kind / name[:2] / f"{name}{suffix}"
        final = self.root / rel
        tmp = self.tmp / f"{name}.part"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = self.write_chunk(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except BaseException as e:
            tmp.unlink(missing_ok=True)  # never leave a partial upload behind
            if isinstance(e, OSError) and e.errno in NO_SPACE:
                metrics.STORE_FULL.set(1)
                final.unlink(missing_ok=True)
                raise StoreFull(e.errno, "the submission store is full") from None
            raise
        metrics.STORE_FULL.set(0)  # space is back (or never ran out)
        return Blob(str(rel), len(data), sha256 or hashlib.sha256(data).hexdigest())

    @staticmethod
    def write_chunk(fd: int, data: memoryview) -> int:
        """One write(2); a seam for tests that simulate a full disk."""
        return os.write(fd, data)

    def path(self, blob_path: str) -> Path:
        p = (self.root / blob_path).resolve()
        if self._resolved_root not in p.parents:
            raise ValueError("blob path outside the storage folder")
        return p

    def read(self, blob_path: str, sha256: str | None = None) -> bytes:
        """The blob's bytes; with `sha256`, verified (a mismatch raises CorruptBlob)."""
        data = self.path(blob_path).read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptBlob(blob_path)
        return data

    def delete(self, blob_path: str) -> None:
        try:
            self.path(blob_path).unlink()
        except FileNotFoundError:
            pass

    def sweep_tmp(self, older_than: float = 0) -> int:
        """Remove temporary files left by a crash (run at start-up, before serving)."""
        removed = 0
        cutoff = time.time() - older_than
        for p in self.tmp.iterdir():
            if p.stat().st_mtime <= cutoff:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed += 1
        return removed


class CorruptBlob(Exception):
    def __init__(self, path: str):
        super().__init__(f"stored file {path} does not match its checksum")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- streaming archives (collect) -------------------------------------------------------------------
#: Flush a streamed archive to the client about every this many bytes.
CHUNK = 1 << 20


def tar_member(name: str, content: bytes | memoryview) -> bytes:
    """One regular file as tar bytes (PAX header, data, padding), as `archive.pack` writes it."""
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    info.mtime = 0
    pad = -info.size % tarfile.BLOCKSIZE
    return b"".join((info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), content, NUL * pad))


def stored_members(data: bytes) -> Iterator[tuple[str, memoryview]]:
    """The regular files of a stored (validated, checksum-verified) tar, as views into `data`:
    headers parsed, contents not copied."""
    view = memoryview(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, view[member.offset_data:member.offset_data + member.size]


def tar_stream(members: Iterable[tuple[str, bytes | memoryview]]) -> Iterator[bytes]:
    """An uncompressed tar of `members` in chunks of about CHUNK bytes: a large collection is sent
    while later blobs are still being read, in bounded memory."""
    buf: list[bytes] = []
    size = 0
    for name, content in members:
        part = tar_member(name, content)
        buf.append(part)
        size += len(part)
        if size >= CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    buf.append(NUL * (2 * tarfile.BLOCKSIZE))  # end of archive
    yield b"".join(buf)
