"""Unit tests of the exchange's parts: archives, blob storage, schema checks, ids, deadlines."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile

import pytest
from sqlalchemy import text
from support.exchange import COURSE, OTHER, make_courses, make_notebook

from coursehub.grading import db
from coursehub.grading.archive import ArchiveError, UploadLimits, collect_dir, pack, read_archive, write_files
from coursehub.grading.ids import BadId, check_assignment_id, check_relpath, check_student_id
from coursehub.grading.storage import BlobStore, CorruptBlob
from coursehub.platform.courses import load_catalog

NB = make_notebook().encode()


def test_archive_round_trip_and_limits():
    files = {"p1.ipynb": NB, "data/table.csv": b"a,b\n1,2\n"}
    assert read_archive(pack(files), UploadLimits()) == files
    assert read_archive(gzip.compress(pack(files)), UploadLimits()) == files
    with pytest.raises(ArchiveError, match="limit per file") as e:
        read_archive(pack({"big": b"x" * 101}), UploadLimits(max_file_bytes=100))
    assert e.value.status == 413
    with pytest.raises(ArchiveError, match="expands beyond"):
        read_archive(gzip.compress(pack({"z": b"\0" * 200_000})), UploadLimits(max_total_bytes=10_000, max_entries=2))
    with pytest.raises(ArchiveError, match="too many files"):
        read_archive(pack({f"f{i}": b"" for i in range(4)}), UploadLimits(max_entries=3))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_archive_refuses_links_and_special_files(kind):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("p1.ipynb")
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ArchiveError):
        read_archive(buf.getvalue(), UploadLimits())


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../x", "a//b", ".hidden", "a\\b", "x/./y", "a/" * 9 + "f"])
def test_relpath_refuses_path_tricks(name):
    with pytest.raises(BadId):
        check_relpath(name)


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a+b", ".x", "a" * 200, "ps1\n", None])
def test_ids_refuse_unsafe_values(bad):
    with pytest.raises(BadId):
        check_student_id(bad)
    with pytest.raises(BadId):
        check_assignment_id(bad)


def test_collect_dir_skips_links_hidden_and_ignored(tmp_path):
    (tmp_path / "p1.ipynb").write_bytes(NB)
    (tmp_path / ".secret").write_text("x")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "p1-checkpoint.ipynb").write_bytes(NB)
    (tmp_path / "link.ipynb").symlink_to("/etc/passwd")
    (tmp_path / "cache.pyc").write_text("x")
    assert set(collect_dir(tmp_path, ignore=["*.pyc"])) == {"p1.ipynb"}


def test_write_files_refuses_escape(tmp_path):
    with pytest.raises(BadId):
        write_files(tmp_path / "dest", {"../escape": b"x"})
    assert not (tmp_path / "escape").exists()


def test_blob_store_is_atomic_and_checksummed(tmp_path):
    store = BlobStore(tmp_path)
    blob = store.put(COURSE, "submission", b"hello")
    assert store.read(blob.path, blob.sha256) == b"hello"
    assert list((tmp_path / "tmp").iterdir()) == []
    store.path(blob.path).write_bytes(b"tampered")
    with pytest.raises(CorruptBlob):
        store.read(blob.path, blob.sha256)
    (tmp_path / "tmp" / "abc.part").write_bytes(b"half")
    assert store.sweep_tmp() == 1
    with pytest.raises(ValueError):
        store.put("../x", "submission", b"")
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_a_blob_stored_with_the_callers_digest_is_verified_against_it(tmp_path):
    """The service hashes an upload once and hands the digest to the store: the right digest is
    kept, a wrong one can only make the blob's reads fail, never pass other bytes."""
    store = BlobStore(tmp_path)
    right = hashlib.sha256(b"hello").hexdigest()
    blob = store.put(COURSE, "submission", b"hello", sha256=right)
    assert blob.sha256 == right and store.read(blob.path, blob.sha256) == b"hello"
    wrong = store.put(COURSE, "submission", b"hello", sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(CorruptBlob):
        store.read(wrong.path, wrong.sha256)


def test_empty_database_is_created_and_old_schema_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = db.make_engine(url)
    db.check_schema(url, engine)  # empty: created
    assert db.schema_status(engine).up_to_date
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('exch_0000')"))
    with pytest.raises(db.SchemaOutdated, match="coursehub grading-db upgrade"):
        db.check_schema(url, engine)
    engine.dispose()


def test_service_refuses_to_start_on_old_schema(tmp_path):
    courses = make_courses(tmp_path / "courses")
    state = tmp_path / "state"
    state.mkdir()
    url = f"sqlite:///{state / 'grading.sqlite'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('exch_0000')"))
    engine.dispose()
    settings = tmp_path / "s.yaml"
    settings.write_text(f"state_dir: {state}\ncourses_dir: {courses}\n")
    r = subprocess.run([sys.executable, "-m", "coursehub.grading.service"], capture_output=True, text=True,
                       env={**os.environ, "COURSEHUB_SETTINGS": str(settings)}, timeout=120)
    assert r.returncode == 2
    assert f"coursehub grading-db upgrade --settings {settings}" in r.stderr
    r = subprocess.run([sys.executable, "-m", "coursehub.cli", "grading-db", "current", "--settings", str(settings)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "exch_0000" in r.stdout


def test_core_deadlines_extensions_and_collect_choice(tmp_path):
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import Caller, ExchangeCore, ServiceError

    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    now = [dt.datetime(2019, 12, 31, 23, 0, tzinfo=dt.UTC)]
    core = ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits(),
                        clock=lambda: now[0])
    prof = Caller("prof2", {OTHER: frozenset({"instructor"})})
    alice = Caller("alice", {OTHER: frozenset({"student"})})
    bob = Caller("bob", {OTHER: frozenset({"student"})})
    core.release(prof, OTHER, "hw1", pack({"p1.ipynb": NB}), force=False)
    with pytest.raises(ServiceError) as e:
        core.release(alice, OTHER, "hw1", pack({"p1.ipynb": NB}), force=True)
    assert e.value.status == 403

    def submit(who: Caller, at: dt.datetime, text_: str) -> dict:
        now[0] = at
        return core.submit(who, OTHER, "hw1", pack({"p1.ipynb": make_notebook(text_).encode()}))

    due = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # hw1's deadline; grace 10 minutes; bob has an extension
    on_time = submit(alice, due - dt.timedelta(hours=1), "early")
    in_grace = submit(alice, due + dt.timedelta(minutes=5), "grace")
    late = submit(alice, due + dt.timedelta(minutes=30), "late")
    bob_sub = submit(bob, due + dt.timedelta(days=3), "bob")
    assert (on_time["late"], in_grace["late"], late["late"], bob_sub["late"]) == (False, False, True, False)
    assert late["seconds_late"] == 1800
    latest = {r["student_id"]: r["id"] for r in core.collection(prof, OTHER, "hw1")}
    assert latest == {"alice": late["id"], "bob": bob_sub["id"]}
    before = {r["student_id"]: r["id"] for r in core.collection(prof, OTHER, "hw1", before_duedate=True)}
    assert before == {"alice": in_grace["id"], "bob": bob_sub["id"]}
    # Every submission is kept.
    assert len(core.submissions(prof, OTHER, "hw1")) == 4
    engine.dispose()
