"""Totals against `nbgrader export`, late policy and deadlines, atomic writes, one snapshot."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.synthetic_gradebook import StudentRow, build_gradebook
from support.venv import venv_env

from coursehub.cli import main
from coursehub.grading.export import load_grades, wide_table, writers
from coursehub.grading.export import snapshot as snapshot_mod
from coursehub.platform.courses import Assignment, Course, Extension, LatePolicy

UTC = dt.UTC


def _nbgrader_export(tmp_path: Path, db_url: str) -> pd.DataFrame:
    out = tmp_path / "nbgrader.csv"
    env = venv_env()
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "nbgrader"), "export", f"--db={db_url}",
                    f"--to={out}"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    return pd.read_csv(out, dtype={"student_id": str})


def test_totals_match_nbgrader_export(tmp_path, plain_db):
    path = plain_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # nbgrader's own stored late penalties count too
        db.execute("UPDATE submitted_notebook SET late_submission_penalty = 1.5 WHERE rowid % 7 = 0")
    theirs = _nbgrader_export(tmp_path, plain_db)
    rc = main(["export", "--course-dir", str(tmp_path), "--db", plain_db, "--long", "--out", str(tmp_path / "ours.csv")])
    assert rc == 0
    ours = pd.read_csv(tmp_path / "ours.csv", dtype={"student_id": str})
    assert len(ours) == len(theirs) == 40 * 5
    both = ours.merge(theirs, on=["assignment", "student_id"], suffixes=("", "_nb"), validate="one_to_one")
    for col in ("raw_score", "late_submission_penalty", "score", "max_score"):
        assert both[col].to_numpy() == pytest.approx(both[col + "_nb"].to_numpy()), col
    assert (both["late_submission_penalty"] > 0).any()
    submitted = both["timestamp_nb"].notna()
    assert (pd.to_datetime(both.loc[submitted, "timestamp"]) == pd.to_datetime(both.loc[submitted, "timestamp_nb"])).all()
    totals_nb = theirs.groupby("student_id")["score"].sum()
    wide = wide_table(load_grades(db_url=plain_db)).set_index("student_id")
    assert wide["total"].to_numpy() == pytest.approx(totals_nb.reindex(wide.index).to_numpy())


def _one_assignment_db(tmp_path, submissions: dict[str, dt.datetime], extension: dict[str, dt.timedelta] | None = None):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    due = dt.datetime(2026, 11, 1, 12, 0)
    build_gradebook(url, students=[StudentRow(s) for s in submissions], assignment_names=["hw"], cells=1,
                    manual_cells=0, submit_rate=1.0, first_due=due)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE grade SET auto_score = 2.0")  # everyone earned full marks: 2 points
        for sid, ts in submissions.items():
            db.execute("UPDATE submitted_assignment SET timestamp = ? WHERE student_id = ?",
                       (ts.strftime("%Y-%m-%d %H:%M:%S.%f"), sid))
        for sid, delta in (extension or {}).items():  # SQLAlchemy's Interval on SQLite: epoch + delta
            db.execute("UPDATE submitted_assignment SET extension = ? WHERE student_id = ?",
                       ((dt.datetime(1970, 1, 1) + delta).strftime("%Y-%m-%d %H:%M:%S.%f"), sid))
    return url, due


def test_late_policy_grace_days_and_cutoff(tmp_path):
    due = dt.datetime(2026, 11, 1, 12, 0)
    subs = {
        "ontime": due - dt.timedelta(hours=1),
        "grace": due + dt.timedelta(minutes=14),
        "day1": due + dt.timedelta(minutes=16),
        "day2": due + dt.timedelta(days=1, minutes=1),
        "day4": due + dt.timedelta(days=3, hours=5),
        "toolate": due + dt.timedelta(days=5, minutes=1),
        "ext": due + dt.timedelta(days=2),
        "yamlext": due + dt.timedelta(days=2),
    }
    url, _ = _one_assignment_db(tmp_path, subs, extension={"ext": dt.timedelta(days=3)})
    course = Course(
        id="c1", title="C", assignments=[Assignment(id="hw")],
        late_policy=LatePolicy(grace_minutes=15, penalty_percent_per_day=10, max_late_days=4),
        extensions=[Extension(student="yamlext", assignment="hw", due=dt.datetime(2026, 11, 4, 12, 0, tzinfo=UTC))],
    )
    long = load_grades(db_url=url, course=course).long.set_index("student_id")
    expect = {"ontime": 2.0, "grace": 2.0, "day1": 1.8, "day2": 1.6, "day4": 1.2, "toolate": 0.0,
              "ext": 2.0, "yamlext": 2.0}
    for sid, score in expect.items():
        assert long.loc[sid, "score"] == pytest.approx(score), sid
    assert long.loc["day1", "minutes_late"] == pytest.approx(16)


def test_course_yaml_deadline_overrides_gradebook(tmp_path):
    due = dt.datetime(2026, 11, 1, 12, 0)
    url, _ = _one_assignment_db(tmp_path, {"a": due + dt.timedelta(hours=2)})
    later = Course(id="c1", title="C", assignments=[Assignment(id="hw", due=dt.datetime(2026, 11, 1, 14, 0,
                   tzinfo=dt.timezone(dt.timedelta(hours=1))))], late_policy=LatePolicy(penalty_percent_per_day=50))
    # 14:00+01:00 is 13:00 UTC: still an hour late
    assert load_grades(db_url=url, course=later).long.loc[0, "score"] == pytest.approx(1.0)
    none = Course(id="c1", title="C", late_policy=LatePolicy(penalty_percent_per_day=50))
    assert load_grades(db_url=url, course=none).long.loc[0, "minutes_late"] == pytest.approx(120)


def test_crash_while_writing_leaves_the_old_export(tmp_path, plain_db, monkeypatch):
    out = tmp_path / "grades.csv"
    out.write_bytes(b"previous export\r\n")

    def boom(fd):  # the data is written, the flush to disk fails (disk full, power cut, kill)
        raise OSError("disk full")

    monkeypatch.setattr(writers.os, "fsync", boom)
    with pytest.raises(OSError):
        main(["export", "--course-dir", str(tmp_path), "--db", plain_db, "--out", str(out)])
    monkeypatch.undo()
    assert out.read_bytes() == b"previous export\r\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_partial_write_never_visible(tmp_path):
    out = tmp_path / "g.csv"

    def half(fh):
        fh.write(b"student_id,total\r\n")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        writers.atomic_write(out, half)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_export_reads_one_snapshot_while_grading_goes_on(tmp_path, plain_db, monkeypatch):
    path = plain_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
    real = snapshot_mod.query_frame
    calls = []

    def grader_writes_between_queries(conn, sql):
        calls.append(sql)
        if len(calls) == 2:  # after the assignments query: a new student and a regrade land
            with sqlite3.connect(path, timeout=5) as db:
                db.execute("INSERT INTO student (id, first_name) VALUES ('late-joiner', 'New')")
                db.execute("UPDATE grade SET auto_score = 0, manual_score = 0")
        return real(conn, sql)

    before = load_grades(db_url=plain_db)
    monkeypatch.setattr(snapshot_mod, "query_frame", grader_writes_between_queries)
    during = load_grades(db_url=plain_db)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(before.long, during.long)
    after = load_grades(db_url=plain_db)
    assert "late-joiner" in set(after.students["student_id"])
    assert after.long["raw_score"].sum() == 0
