"""Collect streams its archive: the same bytes as the packed archive, in bounded chunks, with the
stored files' contents passed through without unpacking."""

from __future__ import annotations

import io
import tarfile

from coursehub.grading import storage
from coursehub.grading.archive import pack
from coursehub.grading.storage import stored_members, tar_stream


def _members(n: int) -> list[tuple[str, bytes]]:
    return [(f"{i}/part{i % 3}.ipynb", (b"x" * (i * 97 % 3000))) for i in range(n)] + [("0/ü nicode.txt", b"\0\1")]


def test_stream_is_the_packed_archive(monkeypatch):
    monkeypatch.setattr(storage, "CHUNK", 4096)  # many chunks
    members = _members(60)
    chunks = list(tar_stream(members))
    assert len(chunks) > 5 and all(len(c) % tarfile.BLOCKSIZE == 0 for c in chunks)
    data = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        got = [(m.name, tar.extractfile(m).read()) for m in tar]
    assert got == members
    packed = pack(members)
    assert data == packed[:len(data)] and packed[len(data):].strip(b"\0") == b""  # pack pads to a record


def test_stored_members_are_views_of_the_stored_tar():
    files = [("a.ipynb", b"{}"), ("sub/b.txt", b"hello" * 1000), ("empty", b"")]
    blob = pack(files)
    got = [(name, bytes(view)) for name, view in stored_members(blob)]
    assert got == files
    assert all(isinstance(view, memoryview) for _, view in stored_members(blob))


def test_empty_stream_is_a_valid_archive():
    data = b"".join(tar_stream([]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmembers() == []
