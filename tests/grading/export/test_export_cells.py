"""Formula injection, RFC 4180 quoting, unicode and the round trip through pandas.read_csv."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from nbgrader.api import Gradebook, MissingEntry

from coursehub.cli import main
from coursehub.grading.export import canvas_table, load_grades, wide_table
from coursehub.grading.export.writers import FORMULA_STARTS, neutralize_text

from .conftest import HOSTILE


def _unquote(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _export(tmp_path, db_url, *extra, name="grades.file") -> bytes:
    out = tmp_path / "out" / name
    rc = main(["export", "--course-dir", str(tmp_path), "--db", db_url, "--out", str(out), *extra])
    assert rc == 0
    return out.read_bytes()


@pytest.mark.parametrize("fmt", [[], ["--long"], ["--format", "canvas"]])
def test_no_text_cell_starts_a_formula(tmp_path, hostile_db, fmt):
    data = _export(tmp_path, hostile_db, *fmt)
    text = data.decode("utf-8")  # UTF-8, or this raises
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert len({len(r) for r in rows}) == 1, "every record has the same number of fields"
    cells = [c for r in rows for c in r]
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            float(cell)  # only a number may start with '-' or '+'
    assert "'=cmd|' /C calc'!A0" in cells
    assert "'=evil()" in cells or "'=evil()" in rows[0]


def test_rfc4180_quoting_and_line_ends(tmp_path, hostile_db):
    text = _export(tmp_path, hostile_db).decode("utf-8")
    assert text.endswith("\r\n")
    assert '"Smith, Jr."' in text
    assert '"O\'Neil, ""Bob"""' in text
    assert '"Line\nBreak"' in text  # an embedded line break stays inside one quoted field
    assert '"ps, 3"' in text.split("\r\n", 1)[0]


def test_neutralize_leaves_numbers_alone():
    assert neutralize_text(-1.5) == -1.5
    assert neutralize_text("-1.5") == "'-1.5"
    assert neutralize_text("@x") == "'@x"
    assert neutralize_text("plain") == "plain"


def test_round_trip_equals_the_gradebook(tmp_path, hostile_db):
    _export(tmp_path, hostile_db)
    back = pd.read_csv(tmp_path / "out" / "grades.file", dtype=str, keep_default_na=False, encoding="utf-8")
    back.columns = [_unquote(c) for c in back.columns]
    gb = Gradebook(hostile_db)
    try:
        assert sorted(_unquote(s) for s in back["student_id"]) == sorted(s.id for s in HOSTILE)
        names = [a.name for a in gb.assignments]
        for _, row in back.iterrows():
            sid = _unquote(row["student_id"])
            student = gb.find_student(sid)
            assert _unquote(row["first_name"]) == (student.first_name or "")
            assert _unquote(row["last_name"]) == (student.last_name or "")
            total = 0.0
            for name in names:
                try:
                    sub = gb.find_submission(name, sid)
                    expect = max(0.0, sub.score - sub.late_submission_penalty)
                except MissingEntry:
                    expect = 0.0
                assert float(row[name]) == pytest.approx(expect)
                total += expect
            assert float(row["total"]) == pytest.approx(total)
    finally:
        gb.close()


def test_numbers_stay_numeric(tmp_path, hostile_db):
    _export(tmp_path, hostile_db)
    back = pd.read_csv(tmp_path / "out" / "grades.file", encoding="utf-8")
    for col in ("ps1", "'=evil()", "ps, 3", "total", "max_total"):
        assert pd.api.types.is_float_dtype(back[col]), col


def test_xlsx_holds_no_formulas(tmp_path, hostile_db):
    _export(tmp_path, hostile_db, "--format", "xlsx", name="grades.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "out" / "grades.xlsx")
    ws = wb.active
    header = [c.value for c in ws[1]]
    assert "'=evil()" in header
    kinds = {c.data_type for row in ws.iter_rows() for c in row if c.value is not None}
    assert "f" not in kinds
    total_col = header.index("total")
    assert all(isinstance(r[total_col].value, (int, float)) for r in ws.iter_rows(min_row=2))


def test_canvas_columns_and_points_possible(hostile_db):
    grades = load_grades(db_url=hostile_db)
    table = canvas_table(grades, section="L01")
    assert list(table.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert list(table.columns[5:]) == list(grades.assignments["assignment"])
    assert table.iloc[0]["Student"].strip() == "Points Possible"
    assert list(table.iloc[0, 5:]) == list(grades.assignments["max_score"])
    bond = table[table["SIS User ID"] == "007"].iloc[0]
    assert bond["Student"] == "Bond, James" and bond["ID"] == "0042" and bond["Section"] == "L01"
    assert len(table) == len(HOSTILE) + 1


def test_wide_has_one_row_per_student_and_column_per_assignment(hostile_db):
    wide = wide_table(load_grades(db_url=hostile_db))
    assert len(wide) == len(HOSTILE)
    assert {"ps1", "=evil()", "ps, 3", "raw_total", "late_penalty", "total", "max_total"} <= set(wide.columns)


def test_missing_gradebook_is_a_clear_error(tmp_path, capsys):
    rc = main(["export", "--course-dir", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    assert rc == 1
    assert "no gradebook" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert not (tmp_path / "gradebook.db").exists(), "reading must not create a gradebook"
