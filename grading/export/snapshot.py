"""Read nbgrader's gradebook tables in one consistent snapshot with a handful of set-based queries.

nbgrader's own export asks the ORM for every (assignment, student) pair, each with several
sub-queries. Here the whole gradebook comes out in five queries inside a single read transaction:
SQLite opens an explicit deferred transaction (a WAL snapshot, or a shared lock in rollback-journal
mode: writers then wait for the export, a second or two), PostgreSQL a REPEATABLE READ, READ ONLY
one, so grades written meanwhile never mix into an export half-way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ASSIGNMENTS_SQL = """
SELECT a.id AS assignment_id, a.name AS assignment, a.duedate AS duedate,
       COALESCE((SELECT SUM(gc.max_score) FROM grade_cells gc
                   JOIN base_cell bc ON bc.id = gc.id
                   JOIN notebook n ON n.id = bc.notebook_id
                  WHERE n.assignment_id = a.id), 0.0)
     + COALESCE((SELECT SUM(tc.max_score) FROM task_cells tc
                   JOIN base_cell bc ON bc.id = tc.id
                   JOIN notebook n ON n.id = bc.notebook_id
                  WHERE n.assignment_id = a.id), 0.0) AS max_score
  FROM assignment a
"""

STUDENTS_SQL = """
SELECT id AS student_id, last_name, first_name, email, lms_user_id FROM student
"""

# Score of a grade exactly as nbgrader's Grade.score column_property: manual wins over auto,
# extra credit added to whichever is used, nothing set -> 0. Summed per submitted notebook in one
# scan of the grade table (no join: SQLite would otherwise probe an index per grade row).
NOTEBOOK_SCORES_SQL = """
SELECT notebook_id AS notebook_id,
       SUM(CASE WHEN manual_score IS NOT NULL THEN manual_score + COALESCE(extra_credit, 0.0)
                WHEN auto_score IS NOT NULL THEN auto_score + COALESCE(extra_credit, 0.0)
                ELSE 0.0 END) AS score,
       MAX(CASE WHEN needs_manual_grade THEN 1 ELSE 0 END) AS needs_manual
  FROM grade GROUP BY notebook_id
"""

SUBMITTED_NOTEBOOKS_SQL = """
SELECT id AS notebook_id, assignment_id AS submission_id, late_submission_penalty AS penalty
  FROM submitted_notebook
"""

SUBMISSIONS_SQL = """
SELECT id AS submission_id, assignment_id AS assignment_id, student_id AS student_id,
       timestamp AS timestamp, extension AS extension
  FROM submitted_assignment
"""


class GradebookMissing(FileNotFoundError):
    """The course has no gradebook yet (nothing autograded or no `nbgrader db` run)."""


@dataclass
class RawGradebook:
    """The gradebook's rows as read in one snapshot (no policy applied yet)."""

    assignments: pd.DataFrame
    students: pd.DataFrame
    submissions: pd.DataFrame


def gradebook_url(course_dir: Path | None = None, db_url: str | None = None) -> str:
    """An explicit database URL, else nbgrader's default `sqlite:///<course_dir>/gradebook.db`."""
    if db_url:
        return db_url
    if course_dir is None:
        raise ValueError("give a course directory or a database URL")
    return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"


def sqlite_path(db_url: str) -> str | None:
    """The file of a `sqlite:///...` URL (None for other databases; ':memory:' for in-memory)."""
    scheme, sep, rest = db_url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest  # sqlite:///rel or sqlite:////abs
    return path.split("?", 1)[0] or ":memory:"


@contextmanager
def snapshot(db_url: str) -> Iterator[Any]:
    """A DB-API connection inside one read-only transaction: every query sees the same data.

    SQLite is read with the standard library's driver (no SQLAlchemy start-up cost for the common
    case); any other database through SQLAlchemy.
    """
    path = sqlite_path(db_url)
    if path is not None:
        if path != ":memory:" and not Path(path).is_file():
            raise GradebookMissing(f"no gradebook at {path}: run the autograder (or `nbgrader db`) first")
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN DEFERRED")  # the snapshot starts with the first read below
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    try:
        with engine.connect() as sa_conn:
            sa_conn = sa_conn.execution_options(isolation_level="REPEATABLE READ")
            with sa_conn.begin():
                sa_conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield sa_conn.connection.dbapi_connection
    finally:
        engine.dispose()


def query_frame(conn: Any, sql: str) -> pd.DataFrame:
    """Rows straight from the DB-API cursor (same transaction), skipping per-row ORM processing."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description]
    finally:
        cur.close()
    return pd.DataFrame.from_records(rows, columns=columns)


def read_gradebook(conn: Any) -> RawGradebook:
    """Five queries, whatever the number of students and assignments; joined with pandas."""
    assignments = query_frame(conn, ASSIGNMENTS_SQL)
    students = query_frame(conn, STUDENTS_SQL)
    submissions = query_frame(conn, SUBMISSIONS_SQL)
    notebooks = query_frame(conn, SUBMITTED_NOTEBOOKS_SQL)
    nb_scores = query_frame(conn, NOTEBOOK_SCORES_SQL)
    # join by position (hash lookups), not pandas merges: uuid string keys make merges slow
    score_at = pd.Index(nb_scores["notebook_id"]).get_indexer(notebooks["notebook_id"])
    has = score_at >= 0
    nb_score = np.where(has, nb_scores["score"].to_numpy(dtype=float)[score_at], 0.0)
    nb_manual = np.where(has, nb_scores["needs_manual"].to_numpy(dtype=float)[score_at], 0.0)
    sub_at = pd.Index(submissions["submission_id"]).get_indexer(notebooks["submission_id"])
    ok = sub_at >= 0
    n = len(submissions)
    penalty = notebooks["penalty"].to_numpy(dtype=float)
    submissions["raw_score"] = np.bincount(sub_at[ok], weights=nb_score[ok], minlength=n)
    submissions["needs_manual_grade"] = np.bincount(sub_at[ok], weights=nb_manual[ok], minlength=n) > 0
    submissions["stored_penalty"] = np.bincount(sub_at[ok], weights=np.nan_to_num(penalty[ok]), minlength=n)
    submissions = submissions.drop(columns="submission_id")
    assignments["duedate"] = _datetimes(assignments["duedate"])
    submissions["timestamp"] = _datetimes(submissions["timestamp"])
    submissions["extension"] = _intervals(submissions["extension"])
    for col in ("raw_score", "stored_penalty"):
        submissions[col] = submissions[col].astype(float)
    assignments["max_score"] = assignments["max_score"].astype(float)
    return RawGradebook(assignments, students, submissions)


def _datetimes(col: pd.Series) -> pd.Series:
    """nbgrader stores naive UTC; SQLite hands back strings, PostgreSQL datetimes."""
    out = pd.to_datetime(col, format="ISO8601", utc=True)
    return out.dt.tz_localize(None).astype("datetime64[us]")


_EPOCH = pd.Timestamp("1970-01-01")


def _intervals(col: pd.Series) -> pd.Series:
    """SQLAlchemy's Interval is a native interval on PostgreSQL and `epoch + delta` on SQLite."""
    if col.isna().all():
        return pd.Series(pd.NaT, index=col.index, dtype="timedelta64[us]")
    if pd.api.types.is_timedelta64_dtype(col):
        return col.astype("timedelta64[us]")
    first = col.dropna().iloc[0]
    if isinstance(first, pd.Timedelta) or hasattr(first, "total_seconds"):
        return pd.to_timedelta(col).astype("timedelta64[us]")
    return (_datetimes(col) - _EPOCH).astype("timedelta64[us]")
