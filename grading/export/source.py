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

#: The grade table by notebook, for NOTEBOOK_SCORES_SQL: SQLite then walks the grades notebook by
#: notebook where it otherwise sorts the whole table (432k rows: 0.67 s -> 0.47 s). On the notebook
#: alone, so each notebook's grades are still added in the table's order, as the sort adds them
#: (a covering index, 0.33 s, would add them in score order: sums then changed in their last bit).
#: Not nbgrader's: coursehub adds it to the gradebooks it creates or writes (`create_gradebook`)
#: and, once, to one it exports (`add_sums_index`). nbgrader reads and writes the table as before.
SUMS_INDEX = "coursehub_grade_notebook"
SUMS_INDEX_SQL = f"CREATE INDEX IF NOT EXISTS {SUMS_INDEX} ON grade (notebook_id)"

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


def has_sums_index(conn: sqlite3.Connection) -> bool:
    """The SQLite gradebook on `conn` has `SUMS_INDEX`."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                        (SUMS_INDEX,)).fetchone() is not None


def add_sums_index(conn: sqlite3.Connection) -> bool:
    """Add `SUMS_INDEX` to a SQLite gradebook that lacks it, if that can be done without waiting:
    True if the gradebook has it now. Never blocks and never fails the caller: a gradebook another
    process is writing (or reading, at the commit), a read-only file or one without a grade table is
    left as it is, and asked again next time. `conn` must be outside a transaction."""
    if has_sums_index(conn):
        return True
    busy_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SUMS_INDEX_SQL)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")


@contextmanager
def snapshot(db_url: str) -> Iterator[Any]:
    """A DB-API connection inside one read-only transaction: every query sees the same data.
    (Before it starts, a SQLite gradebook without `SUMS_INDEX` gets it if it can: `add_sums_index`.)

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
            if path != ":memory:":
                add_sums_index(conn)  # once per gradebook: halves the grade sums of every later export
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
