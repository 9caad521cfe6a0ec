"""Exports of hostile gradebooks: control characters in any text, assignment ids that are also our
column names, and a regrade writing while an export reads (rollback-journal SQLite as nbgrader
leaves it). Every format must come out whole, unambiguous and from one snapshot."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading

import openpyxl
import pandas as pd
import pytest
from support.synthetic_gradebook import StudentRow, build_gradebook

from coursehub.grading.export import canvas_table, load_grades, long_table, wide_table
from coursehub.grading.export import snapshot as snapshot_mod
from coursehub.grading.export.columns import RESERVED, assignment_columns
from coursehub.grading.export.writers import CONTROL, csv_bytes, write_table, xlsx_bytes

CONTROLS = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85, 0x9F])
NASTY = [
    StudentRow("s-ctl", "Null\x00Byte", "Bell\x07Esc\x1b", "v\x0btab@example.org", "lms\x01"),
    StudentRow("s-every", "A" + CONTROLS + "Z", "\x01=cmd|' /C calc'!A0", "\x0c+1", "\x7f@SUM(1)"),
    StudentRow("s-nonchar", "Non\uffffchar", "Non\ufffechar", None, None),
    StudentRow("s-plain", "Plain", "Person", "p@example.org", "lms-p"),
]
COLLIDING = ["total", "email", "student_id", "max_total", "late_penalty", "last_name", "ID", "section", "ps1"]


def tables(url):
    grades = load_grades(db_url=url)
    return {"wide": wide_table(grades), "long": long_table(grades), "canvas": canvas_table(grades)}


def all_text(frame: pd.DataFrame) -> list[str]:
    cells = [str(c) for c in frame.columns]
    for col in range(frame.shape[1]):
        cells += [v for v in frame.iloc[:, col] if isinstance(v, str)]
    return cells


@pytest.fixture
def nasty_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, students=NASTY, assignment_names=["ps\x01one", "=evil\x00()", "ok"], seed=5)
    return url


@pytest.mark.parametrize("shape", ["wide", "long", "canvas"])
def test_control_characters_never_reach_any_format(tmp_path, nasty_db, shape):
    frame = tables(nasty_db)[shape]
    # xlsx: opens (openpyxl refused before: IllegalCharacterError), and no cell holds a control
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"grades": frame})))
    cells = [c.value for row in wb["grades"].iter_rows() for c in row if isinstance(c.value, str)]
    assert cells and not any(CONTROL.search(v) for v in cells)
    assert not any(v.startswith(("=", "+", "-", "@")) for v in cells)  # cleaning did not expose a formula
    # CSV: valid UTF-8, parses back, no control characters, same number of rows
    data = csv_bytes(frame)
    text = data.decode("utf-8")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert len(parsed) == len(frame) + 1
    assert not any(CONTROL.search(v) for row in parsed for v in row)
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for row in parsed for v in row
                   if not _number(v))
    # and through the file writer, both formats
    write_table(frame, tmp_path / f"{shape}.xlsx", "xlsx")
    write_table(frame, tmp_path / f"{shape}.csv", "csv")


def _number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def test_cleaning_keeps_what_is_legal():
    frame = pd.DataFrame({"name": ["Zoë 李雷 🚀", "Line\nBreak", "tab\tinside", None, 3, "lone\ud800"]})
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"g": frame})))
    values = [c.value for c in wb["g"]["A"]][1:]
    assert values[0] == "Zoë 李雷 🚀" and values[1] == "Line\nBreak" and values[2] == "tab\tinside"
    assert values[4] == 3 and values[5] == "lone\ufffd"
    assert csv_bytes(frame).decode("utf-8").splitlines()[-1] == "lone\ufffd"  # encodable


@pytest.fixture
def colliding_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, 6, students=None, assignment_names=COLLIDING, seed=11)
    return url


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("shape", ["wide", "long", "canvas"])
def test_assignment_ids_that_are_our_column_names(tmp_path, colliding_db, shape, fmt):
    grades = load_grades(db_url=colliding_db)
    frame = tables(colliding_db)[shape]
    assert len(set(map(str, frame.columns))) == frame.shape[1], "duplicate headers"
    out = tmp_path / f"{shape}.{fmt}"
    write_table(frame, out, fmt)
    back = pd.read_csv(out) if fmt == "csv" else pd.read_excel(out)
    assert list(back.columns) == list(map(str, frame.columns))
    if shape == "wide":
        # our columns keep their meaning: totals are the sums, ids are the students
        assert list(back["student_id"].astype(str)) == sorted(grades.students["student_id"])
        headers = assignment_columns(COLLIDING)
        sums = back[headers].sum(axis=1)
        assert list(back["total"].round(6)) == list(sums.round(6))
        assert "assignment: total" in back.columns and "assignment: email" in back.columns
        assert back["max_total"].iloc[0] == pytest.approx(grades.assignments["max_score"].sum())
    if shape == "canvas":
        assert list(back.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        assert "assignment: ID" in back.columns and "assignment: section" in back.columns


def test_assignment_columns_are_unique_and_stable():
    names = ["total", "assignment: total", "Total", "email", "ps1", "ps1x"]
    headers = assignment_columns(names)
    assert len({h.casefold() for h in headers}) == len(headers)
    assert not any(h.casefold() in RESERVED for h in headers)
    assert headers[4:] == ["ps1", "ps1x"]  # names that collide with nothing are kept
    assert assignment_columns(names) == headers


def _writer_waits_for_export(path: str, started: threading.Event, done: threading.Event) -> None:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO student (id, first_name) VALUES ('late-joiner', 'New')")
    db.execute("UPDATE grade SET auto_score = 0, manual_score = 0")
    started.set()
    db.execute("COMMIT")  # must wait until the export's read transaction ends
    db.close()
    done.set()


def test_export_in_rollback_journal_mode_reads_one_snapshot(tmp_path, monkeypatch):
    """nbgrader's gradebook is in rollback-journal mode: the export's read transaction keeps a
    regrade's commit out until it has read everything (the regrade waits; it is not mixed in)."""
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, 20, 3, seed=4)
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    before = load_grades(db_url=url)
    real = snapshot_mod.query_frame
    started, done = threading.Event(), threading.Event()
    calls = []

    def regrade_between_queries(conn, sql):
        calls.append(sql)
        if len(calls) == 2:
            threading.Thread(target=_writer_waits_for_export, args=(path, started, done), daemon=True).start()
            assert started.wait(30)
        result = real(conn, sql)
        assert not done.is_set(), "the regrade committed while the export was still reading"
        return result

    monkeypatch.setattr(snapshot_mod, "query_frame", regrade_between_queries)
    during = load_grades(db_url=url)
    monkeypatch.undo()
    assert done.wait(30)  # the regrade went through right after
    pd.testing.assert_frame_equal(before.long, during.long)
    after = load_grades(db_url=url)
    assert "late-joiner" in set(after.students["student_id"]) and after.long["raw_score"].sum() == 0
