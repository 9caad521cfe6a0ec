"""Creating an empty nbgrader gradebook without nbgrader's `alembic` subprocess.

This tracks `nbgrader/api.py` (`Gradebook.__init__`: create the tables, stamp alembic's head, add
the course row); when nbgrader changes how it creates a gradebook, change this with it.
tests/grading/test_gradebook.py compares the result with a gradebook nbgrader made itself.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine


def nbgrader_schema_head() -> str:
    """nbgrader's alembic head, read in-process (nbgrader itself runs the `alembic` command)."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()


def create_gradebook(db_url: str, course_id: str = "") -> None:
    """An empty nbgrader gradebook exactly as `Gradebook(db_url)` makes one (tables, alembic stamp,
    course row), without the `alembic` subprocess nbgrader starts for it."""
    from nbgrader.api import Base as NbBase
    from nbgrader.api import Gradebook
    from sqlalchemy import inspect, text

    engine = create_engine(db_url)
    try:
        if not inspect(engine).get_table_names():
            NbBase.metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                             {"v": nbgrader_schema_head()})
    finally:
        engine.dispose()
    Gradebook(db_url, course_id=course_id).close()  # the course row, as nbgrader adds it
