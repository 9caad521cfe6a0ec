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


def _queries_here(monkeypatch) -> list[str]:
    """The SQL the exporting process runs on its own connection."""
    from coursehub.grading.export import rows

    seen: list[str] = []
    real = rows._fetch

    def spy(conn, sql):
        seen.append(sql)
        return real(conn, sql)

    monkeypatch.setattr(rows, "_fetch", spy)
    return seen


def test_grade_sums_come_from_a_process_of_their_own(tmp_path, monkeypatch):
    """The grade table's GROUP BY runs in `grade_sums.py` (not on the export's connection), and its
    marshalled floats are the same bits the pandas path sums."""
    from coursehub.grading.export.source import NOTEBOOK_SCORES_SQL

    url = _messy_db(tmp_path)
    here = _queries_here(monkeypatch)
    plain = read_plain(db_url=url, course=_course())
    assert NOTEBOOK_SCORES_SQL not in here and len(here) >= 4
    assert rows_csv_bytes(*long_rows(plain)) == csv_bytes(long_table(load_grades(db_url=url, course=_course())))


@pytest.mark.parametrize("broken", ["missing script", "failing script", "garbage output"])
def test_grade_sums_process_that_fails_leaves_the_export_whole(tmp_path, monkeypatch, broken):
    from coursehub.grading.export import rows
    from coursehub.grading.export.source import NOTEBOOK_SCORES_SQL

    url = _messy_db(tmp_path)
    script = tmp_path / "grade_sums.py"
    if broken == "failing script":
        script.write_text("import sys\nsys.stdout.write('partial')\nsys.exit(1)\n")
    elif broken == "garbage output":
        script.write_text("import sys\nsys.stdout.write('not marshal')\n")
    monkeypatch.setattr(rows, "_GRADE_SUMS", script)
    here = _queries_here(monkeypatch)
    if broken == "garbage output":
        with pytest.raises(ValueError):  # a wrong answer is never taken for grades
            read_plain(db_url=url)
        return
    plain = read_plain(db_url=url)
    assert NOTEBOOK_SCORES_SQL in here  # summed on the export's own connection instead
    assert rows_csv_bytes(*wide_rows(plain)) == csv_bytes(wide_table(load_grades(db_url=url)))


def _wait_until_a_writer_is_queued(path: str) -> None:
    """Until a new reader is refused: the regrade holds PENDING, waiting for the export's lock."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0)
        try:
            probe.execute("SELECT count(*) FROM student").fetchone()
        except sqlite3.OperationalError:
            return
        finally:
            probe.close()
        time.sleep(0.01)
    raise AssertionError("the regrade never queued for the export's lock")


def _regrade(path: str, started, done) -> None:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE grade SET auto_score = 0, manual_score = 0, extra_credit = NULL")
    started.set()
    db.execute("COMMIT")  # waits for the export's read lock
    db.close()
    done.set()


@pytest.mark.parametrize("when", ["before the sums start", "while they run"])
def test_regrade_racing_the_plain_export_waits_for_it(tmp_path, monkeypatch, when):
    """Rollback-journal mode (nbgrader's): a regrade that commits during the export is in none of its
    numbers, whether it queued before the grade-sums process took its lock (that process gives up at
    once and the sums run on the export's connection) or after."""
    import threading

    from coursehub.grading.export import rows
    from coursehub.grading.export.source import ASSIGNMENTS_SQL, NOTEBOOK_SCORES_SQL

    url = _messy_db(tmp_path)
    path = url.removeprefix("sqlite:///")
    before = rows_csv_bytes(*wide_rows(read_plain(db_url=url)))
    started, done = threading.Event(), threading.Event()
    real_fetch, real_beside = rows._fetch, rows._scores_beside
    seen: list[str] = []

    def start_regrade() -> None:
        threading.Thread(target=_regrade, args=(path, started, done), daemon=True).start()
        assert started.wait(30)

    def fetch(conn, sql):
        seen.append(sql)
        if sql == ASSIGNMENTS_SQL and when == "before the sums start":
            result = real_fetch(conn, sql)  # the export holds its lock from here
            start_regrade()
            _wait_until_a_writer_is_queued(path)
            return result
        return real_fetch(conn, sql)

    def beside(conn, url_):
        collect = real_beside(conn, url_)
        if when == "while they run":
            start_regrade()
        return collect

    monkeypatch.setattr(rows, "_fetch", fetch)
    monkeypatch.setattr(rows, "_scores_beside", beside)
    during = rows_csv_bytes(*wide_rows(read_plain(db_url=url)))
    assert not done.is_set() or during == before
    monkeypatch.undo()
    assert done.wait(30), "the regrade never committed"
    assert during == before
    if when == "before the sums start":  # the grade-sums process could not read: summed here
        assert NOTEBOOK_SCORES_SQL in seen
    after = rows_csv_bytes(*wide_rows(read_plain(db_url=url)))
    assert after != before


@pytest.mark.parametrize("folder", ["course#1", "a b", "x&y=z"])
def test_grade_sums_process_reads_the_gradebook_whatever_its_folder_is_called(tmp_path, monkeypatch, folder):
    """The other process opens the gradebook by a `file:` URI: a `#` once cut the path (and its
    read-only flag) short, so SQLite created an empty file beside the course and the sums fell back."""
    from coursehub.grading.export.source import NOTEBOOK_SCORES_SQL

    course = tmp_path / folder
    course.mkdir()
    url = _messy_db(course)
    before = sorted(p.name for p in tmp_path.iterdir())
    here = _queries_here(monkeypatch)
    plain = read_plain(db_url=url)
    assert NOTEBOOK_SCORES_SQL not in here  # summed by the other process
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created beside the course
    assert rows_csv_bytes(*wide_rows(plain)) == csv_bytes(wide_table(load_grades(db_url=url)))
