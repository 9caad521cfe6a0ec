"""The command's plain-Python export (`rows.py`) writes the same bytes as the pandas tables.

Gradebooks with late submissions (course late policy with grace, per-day penalty and cut-off),
nbgrader's own stored penalties, extensions (gradebook intervals and course.yaml), course.yaml
deadlines, manual grades (graded, ungraded, extra credit), missing submissions, submissions without
notebooks or grades, and hostile names.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys

import numpy as np
import pytest
from support.synthetic_gradebook import build_gradebook

from coursehub.cli import main
from coursehub.grading.export import canvas_table, load_grades, long_table, wide_table
from coursehub.grading.export.rows import (
    canvas_rows,
    long_rows,
    pairwise_sum,
    read_plain,
    segment_sum,
    wide_rows,
)
from coursehub.grading.export.writers import csv_bytes, rows_csv_bytes
from coursehub.platform.courses import Assignment, Course, Extension, LatePolicy

from .conftest import HOSTILE

UTC = dt.UTC


def _messy_db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, 60, 6, seed=11, late_rate=0.5, submit_rate=0.8)
    build_gradebook(url, students=HOSTILE, assignment_names=["=evil()", "ps, 3"], seed=5, late_rate=0.5)
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE submitted_notebook SET late_submission_penalty = 0.7 WHERE rowid % 5 = 0")
        db.execute("UPDATE grade SET extra_credit = 0.1, manual_score = 1.3 WHERE rowid % 11 = 0")
        db.execute("UPDATE grade SET auto_score = 0.35 WHERE rowid % 13 = 0")
        db.execute("UPDATE submitted_assignment SET extension = '1970-01-02 06:00:00.000000' WHERE rowid % 9 = 0")
        db.execute("DELETE FROM grade WHERE notebook_id IN (SELECT id FROM submitted_notebook WHERE rowid % 17 = 0)")
        db.execute("DELETE FROM submitted_notebook WHERE rowid % 19 = 0")  # a submission without notebooks
        db.execute("UPDATE assignment SET duedate = NULL WHERE name = 'ps06'")
    return url


def _course() -> Course:
    return Course(
        id="c1", title="C",
        assignments=[Assignment(id="ps01"), Assignment(id="ps04"), Assignment(id="ps02", due=dt.datetime(2026, 10, 9, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))],
        late_policy=LatePolicy(grace_minutes=15, penalty_percent_per_day=7.5, max_late_days=4),
        extensions=[Extension(student="s00003", assignment="ps02", due=dt.datetime(2026, 10, 5, 0, 0, tzinfo=UTC)),
                    Extension(student="007", assignment="ps04", due=dt.datetime(2026, 10, 30, 0, 0, tzinfo=UTC))],
    )  # fmt: skip


@pytest.mark.parametrize("with_course", [False, True])
def test_plain_csv_is_byte_for_byte_the_pandas_csv(tmp_path, with_course):
    url = _messy_db(tmp_path)
    course = _course() if with_course else None
    grades = load_grades(db_url=url, course=course)
    plain = read_plain(db_url=url, course=course)
    assert (grades.long["late_submission_penalty"] > grades.long["raw_score"] * 0).any()  # penalties happen
    assert rows_csv_bytes(*long_rows(plain)) == csv_bytes(long_table(grades))
    assert rows_csv_bytes(*wide_rows(plain)) == csv_bytes(wide_table(grades))
    assert rows_csv_bytes(*canvas_rows(plain, "Sec, 1")) == csv_bytes(canvas_table(grades, section="Sec, 1"))


def test_plain_path_on_hostile_names(tmp_path, hostile_db):
    grades = load_grades(db_url=hostile_db)
    plain = read_plain(db_url=hostile_db)
    assert rows_csv_bytes(*wide_rows(plain)) == csv_bytes(wide_table(grades))
    assert rows_csv_bytes(*canvas_rows(plain)) == csv_bytes(canvas_table(grades))
    assert rows_csv_bytes(*long_rows(plain)) == csv_bytes(long_table(grades))


@pytest.mark.parametrize("fmt", ["csv", "canvas", "long"])
def test_command_writes_what_the_pandas_path_writes(tmp_path, fmt):
    url = _messy_db(tmp_path)
    out = tmp_path / "out.csv"
    args = ["export", "--course-dir", str(tmp_path), "--db", url, "--out", str(out)]
    args += ["--long"] if fmt == "long" else ["--format", fmt] if fmt == "canvas" else []
    assert main(args) == 0
    grades = load_grades(db_url=url)
    table = {"csv": wide_table, "canvas": canvas_table, "long": long_table}[fmt](grades)
    assert out.read_bytes() == csv_bytes(table)


def test_sums_are_numpys_to_the_last_bit():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 8, 9, 40, 127, 128, 129, 130, 300, 1001):
        values = rng.random(n) * 10
        assert pairwise_sum(values.tolist()) == float(values.sum()), n
        assert segment_sum(values.tolist()) == float(np.add.reduceat(values, [0])[0]), n


def test_command_does_not_import_pandas(tmp_path, hostile_db):
    import subprocess

    code = ("import sys; from coursehub.cli import main; "
            f"rc = main(['export', '--course-dir', {str(tmp_path)!r}, '--db', {hostile_db!r}, "
            f"'--out', {str(tmp_path / 'o.csv')!r}]); "
            "sys.exit(10 if 'pandas' in sys.modules or 'numpy' in sys.modules else rc)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0
