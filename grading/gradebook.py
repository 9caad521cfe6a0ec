"""Creating an empty nbgrader gradebook without nbgrader's `alembic` subprocess.

This tracks `nbgrader/api.py` (`Gradebook.__init__`: create the tables, stamp alembic's head, add
the course row); when nbgrader changes how it creates a gradebook, change this with it.
tests/grading/test_gradebook.py compares the result with a gradebook nbgrader made itself.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection

from coursehub.grading.export.source import SUMS_INDEX, SUMS_INDEX_SQL
from coursehub.platform.database import schema_change


def nbgrader_schema_head() -> str:
    """nbgrader's alembic head, read in-process (nbgrader itself runs the `alembic` command)."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()


#: pg_advisory_xact_lock key of "one process creates a gradebook at a time".
_PG_LOCK = 0x6E6267  # "nbg"


def _complete(conn: Connection, course_id: str) -> bool:
    """The gradebook has nbgrader's tables, its alembic stamp, coursehub's index on the grade table
    (`SUMS_INDEX`) and (if named) the course's row."""
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    if not {"course", "alembic_version", "grade"} <= tables:
        return False
    if SUMS_INDEX not in {ix["name"] for ix in insp.get_indexes("grade")}:
        return False
    return not course_id or conn.execute(text("SELECT 1 FROM course WHERE id = :c"), {"c": course_id}).first() is not None


def create_gradebook(db_url: str, course_id: str = "") -> None:
    """An empty nbgrader gradebook exactly as `Gradebook(db_url, course_id)` makes one (tables,
    alembic stamp, course row), without the `alembic` subprocess nbgrader starts for it, plus
    coursehub's index on the grade table for the export's grade sums (`SUMS_INDEX`, also added to a
    gradebook nbgrader made); nothing if it is all there. Safe when several processes do it at once
    (the grading service writing deadlines as a worker or a CLI opens the same course): nbgrader's
    own check-then-create is not, the second process fails with "table already exists" or a
    duplicate course row."""
    from nbgrader.api import Base as NbBase

    reader = create_engine(db_url)
    try:  # the common case: it exists, a read and no lock
        with reader.connect() as conn:
            if _complete(conn, course_id):
                return
    finally:
        reader.dispose()
    with schema_change(db_url, _PG_LOCK, wal=False) as conn:
        if _complete(conn, course_id):
            return  # another process made it while this one waited for the lock
        tables = inspect(conn).get_table_names()
        if not tables:
            NbBase.metadata.create_all(conn)
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": nbgrader_schema_head()})
        if not tables or "grade" in tables:
            conn.execute(text(SUMS_INDEX_SQL))  # a gradebook nbgrader made gets it here, once
        if course_id and conn.execute(text("SELECT 1 FROM course WHERE id = :c"), {"c": course_id}).first() is None:
            conn.execute(text("INSERT INTO course (id) VALUES (:c)"), {"c": course_id})  # as nbgrader's check_course


STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")


#: Student ids per `IN (...)` query (well under every database's limit on bound parameters).
_ID_BATCH = 500


def upsert_students(db_url: str, students: list[dict]) -> int:
    """Create or update nbgrader `Student` rows ({"id", "first_name", "last_name", "email",
    "lms_user_id"}) so the formgrader and exports show names and the LMS import can match people.
    A missing (None) value keeps what the row has; returns how many rows were created or changed.

    One read per 500 ids and one commit for all (nbgrader's `add_student` commits per student: a
    roster of 3,000, or a lecture's first launches, were 3,000 commits of the gradebook). If another
    writer (the formgrader) adds one of them meanwhile, the batch is redone one student at a time."""
    from nbgrader.api import Gradebook, Student
    from sqlalchemy.exc import IntegrityError

    create_gradebook(db_url)  # no-op on an existing gradebook
    wanted = {st["id"]: {k: st[k] for k in STUDENT_FIELDS if st.get(k) is not None} for st in students}
    if not wanted:
        return 0
    with Gradebook(db_url) as gb:
        ids = list(wanted)
        rows = {r.id: r for i in range(0, len(ids), _ID_BATCH)
                for r in gb.db.query(Student).filter(Student.id.in_(ids[i:i + _ID_BATCH]))}
        changed = 0
        for sid, values in wanted.items():
            row = rows.get(sid)
            if row is None:
                gb.db.add(Student(id=sid, **values))
            elif _differs(row, values):
                for k, v in values.items():
                    setattr(row, k, v)
            else:
                continue
            changed += 1
        try:
            gb.db.commit()
        except IntegrityError:
            gb.db.rollback()
            return _upsert_one_at_a_time(gb, wanted)
    return changed


def _upsert_one_at_a_time(gb: Any, wanted: dict[str, dict]) -> int:
    """nbgrader's own per-student path (a commit each), for a batch that met a concurrent writer."""
    from nbgrader.api import MissingEntry

    changed = 0
    for sid, values in wanted.items():
        try:
            row = gb.find_student(sid)
        except MissingEntry:
            row = None
        if row is None or _differs(row, values):
            gb.update_or_create_student(sid, **values)  # nbgrader's find-or-add, then set, then commit
            changed += 1
    return changed


def _differs(row: Any, values: dict) -> bool:
    return any(getattr(row, k) != v for k, v in values.items())


def course_gradebook_url(settings: Any, course_id: str) -> str:
    """A course's gradebook: `CourseDirectory.db_url` in its shared course directory's
    nbgrader_config.py (e.g. PostgreSQL at scale), else gradebook.db there. The directory is
    `<state_dir>/course-dirs/<course>` (`coursehub.grading.service.coursedirs`, which imports this
    module, so the path is spelled here too)."""
    from pathlib import Path

    root = Path(settings.state_dir) / "course-dirs" / course_id
    config = root / "nbgrader_config.py"
    if config.is_file():
        from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

        try:
            url = PyFileConfigLoader(config.name, path=str(root)).load_config().CourseDirectory.get("db_url")
        except (ConfigFileNotFound, SyntaxError, NameError):
            url = None
        if isinstance(url, str) and url:
            return url
    return f"sqlite:///{root / 'gradebook.db'}"
