"""Where the gradebook is and how it is read: the SQL, and one read-only snapshot of it.

Kept free of pandas and numpy so `coursehub export` starts fast; `snapshot.py` (the pandas path used by
the dashboard and the LMS sync) and `rows.py` (the command's plain-Python path) both read through here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
            # sorting the grade table for its GROUP BY in memory, and reading pages by mmap, not read(2)
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA mmap_size=1073741824")
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
