"""Read nbgrader's gradebook tables in one consistent snapshot with a handful of set-based queries.

nbgrader's own export asks the ORM for every (assignment, student) pair, each with several
sub-queries. Here the whole gradebook comes out in five queries inside a single read transaction:
SQLite opens an explicit deferred transaction (a WAL snapshot, or a shared lock in rollback-journal
mode: writers then wait for the export, a second or two), PostgreSQL a REPEATABLE READ, READ ONLY
one, so grades written meanwhile never mix into an export half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .source import (  # noqa: F401  (re-exported: the names this module always had)
    ASSIGNMENTS_SQL,
    NOTEBOOK_SCORES_SQL,
    STUDENTS_SQL,
    SUBMISSIONS_SQL,
    SUBMITTED_NOTEBOOKS_SQL,
    GradebookMissing,
    gradebook_url,
    snapshot,
    sqlite_path,
)


@dataclass
class RawGradebook:
    """The gradebook's rows as read in one snapshot (no policy applied yet)."""

    assignments: pd.DataFrame
    students: pd.DataFrame
    submissions: pd.DataFrame


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
