"""coursehub's covering index for the export's grade sums (`SUMS_INDEX`), and the export's pause of
the cyclic garbage collector.

The index is added by `create_gradebook` (new gradebooks and ones nbgrader made) and once by the
export itself, never at the cost of waiting for another process or of failing the export; nbgrader
keeps reading and writing the gradebook as before.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from support.synthetic_gradebook import build_gradebook

from coursehub.cli import main
from coursehub.grading.export import load_grades, wide_table
from coursehub.grading.export.rows import read_plain, wide_rows
from coursehub.grading.export.source import NOTEBOOK_SCORES_SQL, SUMS_INDEX, add_sums_index, has_sums_index
from coursehub.grading.export.writers import csv_bytes, rows_csv_bytes
from coursehub.grading.gradebook import create_gradebook


def _has_index(path: Path) -> bool:
    with closing(sqlite3.connect(path)) as db:
        return has_sums_index(db)


def _without_index(tmp_path: Path) -> Path:
    """A gradebook with grades (late ones, manual ones, extra credit) as nbgrader leaves it: no index."""
    path = tmp_path / "gradebook.db"
    build_gradebook(f"sqlite:///{path}", 40, 5, seed=7, late_rate=0.4, submit_rate=0.8)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE grade SET extra_credit = 0.1, manual_score = 1.3 WHERE rowid % 7 = 0")
        db.execute("UPDATE grade SET auto_score = 0.35 WHERE rowid % 3 = 0")
        db.execute(f"DROP INDEX {SUMS_INDEX}")
    assert not _has_index(path)
    return path


def _sums(path: Path) -> tuple[dict, str]:
    """Each notebook's grade sum as the export reads it, and how SQLite read them."""
    with sqlite3.connect(path) as db:
        plan = str(db.execute(f"EXPLAIN QUERY PLAN {NOTEBOOK_SCORES_SQL}").fetchall())
        return {r[0]: r[1:] for r in db.execute(NOTEBOOK_SCORES_SQL)}, plan


def test_the_first_export_adds_the_index_and_the_numbers_stay_the_same(tmp_path: Path) -> None:
    """To the last bit: each notebook's grades are added in the same order with the index as
    without (a covering index on the scores would add them in score order)."""
    path = _without_index(tmp_path)
    sorted_sums, plan = _sums(path)
    assert "TEMP B-TREE" in plan  # without it SQLite sorts the whole grade table
    out = tmp_path / "first.csv"
    assert main(["export", "--course-dir", str(tmp_path), "--out", str(out)]) == 0
    assert _has_index(path)
    indexed_sums, plan = _sums(path)
    assert f"USING INDEX {SUMS_INDEX}" in plan and "TEMP B-TREE" not in plan
    assert indexed_sums == sorted_sums and any(s[0] != round(s[0], 2) for s in sorted_sums.values())
    again = tmp_path / "again.csv"
    assert main(["export", "--course-dir", str(tmp_path), "--out", str(again)]) == 0
    url = f"sqlite:///{path}"
    assert again.read_bytes() == out.read_bytes() == csv_bytes(wide_table(load_grades(db_url=url)))


def test_the_export_never_waits_for_a_writer_to_add_the_index(tmp_path: Path) -> None:
    """Another process holds the write lock for the whole export: the export reads its snapshot
    (rollback-journal readers may, beside a RESERVED lock) and leaves the index for another time."""
    path = _without_index(tmp_path)
    expected = rows_csv_bytes(*wide_rows(read_plain(db_url=f"sqlite:///{path}")))
    with sqlite3.connect(path) as db:  # the read above could have added it: take it away again
        db.execute(f"DROP INDEX IF EXISTS {SUMS_INDEX}")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE student SET first_name = 'mid-write' WHERE rowid = 1")
    result: dict = {}
    export = threading.Thread(target=lambda: result.update(rows=wide_rows(read_plain(db_url=f"sqlite:///{path}"))))
    try:
        export.start()
        export.join(20)  # the busy timeout it must not wait for is 30 s
        assert not export.is_alive(), "the export waited for the writer"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        export.join()
    assert rows_csv_bytes(*result["rows"]) == expected
    assert not _has_index(path)


def test_a_read_only_or_foreign_database_is_left_as_it_is(tmp_path: Path) -> None:
    path = _without_index(tmp_path)
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        assert add_sums_index(ro) is False
        assert ro.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # put back as it was
        assert not ro.in_transaction
    finally:
        ro.close()
    assert not _has_index(path)
    other = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
    try:
        other.execute("CREATE TABLE t (x)")
        assert add_sums_index(other) is False  # no grade table: nothing created, nothing raised
        assert not other.in_transaction
    finally:
        other.close()


@pytest.mark.parametrize("course_id", ["", "demo-101"])
def test_create_gradebook_adds_the_index_to_a_gradebook_nbgrader_made(tmp_path: Path, course_id: str) -> None:
    path = tmp_path / "gb.db"
    url = f"sqlite:///{path}"
    with Gradebook(url, course_id="demo-101") as gb:
        gb.add_student("s1", first_name="Ada")
    assert not _has_index(path)
    create_gradebook(url, course_id)  # the course row is there already: not added twice
    assert _has_index(path)
    with Gradebook(url, course_id="demo-101") as gb:  # nbgrader opens and writes it as before
        gb.add_student("s2")
        assert {s.id for s in gb.students} == {"s1", "s2"}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM course").fetchall() == [("demo-101",)]


def test_a_new_gradebook_has_the_index(tmp_path: Path) -> None:
    create_gradebook(f"sqlite:///{tmp_path / 'gb.db'}", "c")
    assert _has_index(tmp_path / "gb.db")


def test_the_export_pauses_the_cyclic_collector_and_restores_it(tmp_path: Path, monkeypatch) -> None:
    from coursehub.grading.export import rows

    path = _without_index(tmp_path)
    seen: list[bool] = []
    real = rows.read_plain

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(rows, "read_plain", spy)
    assert gc.isenabled()
    assert main(["export", "--course-dir", str(tmp_path), "--out", str(tmp_path / "o.csv")]) == 0
    assert seen == [False] and gc.isenabled()
    path.unlink()
    assert main(["export", "--course-dir", str(tmp_path), "--out", str(tmp_path / "o.csv")]) == 1  # no gradebook
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that had it off keeps it off
        assert main(["export", "--course-dir", str(tmp_path), "--out", str(tmp_path / "o.csv")]) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
