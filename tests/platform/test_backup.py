"""`coursehub backup` / `coursehub restore` on a state folder made by hand (no hub): what is copied,
SQLite snapshots taken while a writer holds the database, and what restore refuses."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from coursehub.backup import backup
from coursehub.cli import main
from coursehub.platform.settings import load_settings
from coursehub.restore import restore


def make_state(state: Path) -> None:
    state.mkdir(parents=True)
    for name in ("jupyterhub.sqlite", "lti.sqlite", "grading.sqlite"):
        with sqlite3.connect(state / name) as db:
            db.execute("create table t (v text)")
            db.execute("insert into t values (?)", (name,))
    (state / "exchange" / "blobs" / "c" / "submission").mkdir(parents=True)
    (state / "exchange" / "blobs" / "c" / "submission" / "b1.tar").write_bytes(b"work")
    (state / "exchange" / "tmp").mkdir()
    (state / "exchange" / "tmp" / "partial.part").write_bytes(b"half")
    (state / "course-dirs" / "c" / "source").mkdir(parents=True)
    with sqlite3.connect(state / "course-dirs" / "c" / "gradebook.db") as db:
        db.execute("create table grade (student text, score real)")
        db.execute("insert into grade values ('ana', 9.5)")
    (state / "lti").mkdir()
    (state / "lti" / "tool-key.pem").write_bytes(b"KEY")
    (state / "jupyterhub_cookie_secret").write_bytes(b"SECRET")
    (state / "homes" / "ana").mkdir(parents=True)
    (state / "homes" / "ana" / "nb.ipynb").write_text("{}")


def settings_for(state: Path):
    return load_settings(None, state_dir=state)


def test_round_trip_copies_every_part_and_skips_partial_uploads(tmp_path):
    make_state(tmp_path / "live")
    manifest = backup(settings_for(tmp_path / "live"), tmp_path / "b", progress=False)
    assert "store/tmp/partial.part" not in manifest["files"]
    restore(tmp_path / "b", settings_for(tmp_path / "new"), progress=False)
    new = tmp_path / "new"
    for name in ("jupyterhub.sqlite", "lti.sqlite", "grading.sqlite"):
        with sqlite3.connect(new / name) as db:
            assert db.execute("select v from t").fetchall() == [(name,)]
    with sqlite3.connect(new / "course-dirs" / "c" / "gradebook.db") as db:
        assert db.execute("select * from grade").fetchall() == [("ana", 9.5)]
    assert (new / "exchange" / "blobs" / "c" / "submission" / "b1.tar").read_bytes() == b"work"
    assert (new / "lti" / "tool-key.pem").read_bytes() == b"KEY"
    assert (new / "jupyterhub_cookie_secret").read_bytes() == b"SECRET"
    assert (new / "homes" / "ana" / "nb.ipynb").read_text() == "{}"
    assert (new.stat().st_mode & 0o777) == 0o700 and ((tmp_path / "b").stat().st_mode & 0o777) == 0o700


def test_a_database_in_the_middle_of_a_write_transaction_is_copied_as_committed(tmp_path):
    make_state(tmp_path / "live")
    writer = sqlite3.connect(tmp_path / "live" / "grading.sqlite", isolation_level=None, check_same_thread=False)
    writer.execute("begin")
    writer.execute("insert into t values ('uncommitted')")
    released = threading.Timer(2, writer.execute, args=("commit",))  # a writer that commits later
    released.start()
    try:
        backup(settings_for(tmp_path / "live"), tmp_path / "b", progress=False)
    finally:
        released.join()
        writer.close()
    with sqlite3.connect(tmp_path / "b" / "grading" / "grading.sqlite") as db:
        rows = db.execute("select v from t").fetchall()
    assert rows in ([("grading.sqlite",)], [("grading.sqlite",), ("uncommitted",)])  # never half a transaction
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)


def test_restore_refuses_a_state_folder_that_is_not_empty(tmp_path):
    make_state(tmp_path / "live")
    backup(settings_for(tmp_path / "live"), tmp_path / "b", progress=False)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "jupyterhub.sqlite").write_bytes(b"precious")
    assert main(["restore", str(tmp_path / "b"), "--state-dir", str(tmp_path / "used"), "--quiet"]) == 1
    assert (tmp_path / "used" / "jupyterhub.sqlite").read_bytes() == b"precious"


@pytest.mark.parametrize("damage", ["change", "remove", "add"])
def test_restore_refuses_a_damaged_backup_before_writing_anything(tmp_path, damage):
    make_state(tmp_path / "live")
    backup(settings_for(tmp_path / "live"), tmp_path / "b", progress=False)
    files = json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]
    blob = tmp_path / "b" / next(f for f in files if f.startswith("store/"))
    if damage == "change":
        blob.write_bytes(b"tampered")
    elif damage == "remove":
        blob.unlink()
    else:
        (tmp_path / "b" / "homes" / "extra.py").write_text("import os")
    assert main(["restore", str(tmp_path / "b"), "--state-dir", str(tmp_path / "new"), "--quiet"]) == 1
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    make_state(tmp_path / "live")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("x")
    assert main(["backup", "--out", str(tmp_path / "b"), "--state-dir", str(tmp_path / "live"), "--quiet"]) == 1
    assert "not empty" in capsys.readouterr().err


def test_postgresql_databases_go_through_pg_dump_and_restore_refuses_a_used_database(tmp_path, pg_database):
    from sqlalchemy import create_engine, text

    url = {db: pg_database(db) for db in ("hub", "grading", "hub2", "grading2", "used")}
    for db, rows in (("hub", ["users", "coursehub_lti_identities"]), ("grading", ["grades"])):
        e = create_engine(url[db])
        with e.begin() as c:
            for table in rows:
                c.execute(text(f"create table {table} (v text)"))
                c.execute(text(f"insert into {table} values ('{db}:{table}')"))
        e.dispose()

    def settings(state: Path, hub: str, grading: str):
        return load_settings(None, state_dir=state, hub={"db_url": url[hub]}, grading={"db_url": url[grading]})

    make_state(tmp_path / "live")
    manifest = backup(settings(tmp_path / "live", "hub", "grading"), tmp_path / "b", progress=False)
    assert {"hub/dump.pgc", "grading/dump.pgc"} <= set(manifest["files"])
    assert "lti" not in manifest["parts"]  # the LTI tables are in the hub's database, dumped once

    used = create_engine(url["used"])
    with used.begin() as c:
        c.execute(text("create table keep (v text)"))
    used.dispose()
    with pytest.raises(Exception, match="already has tables"):
        restore(tmp_path / "b", settings(tmp_path / "x", "used", "grading2"), progress=False)

    restore(tmp_path / "b", settings(tmp_path / "new", "hub2", "grading2"), progress=False)
    for db, table, value in (("hub2", "users", "hub:users"), ("hub2", "coursehub_lti_identities",
                             "hub:coursehub_lti_identities"), ("grading2", "grades", "grading:grades")):
        e = create_engine(url[db])
        with e.connect() as c:
            assert c.execute(text(f"select v from {table}")).scalars().all() == [value]
        e.dispose()
