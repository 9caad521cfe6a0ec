"""`create_gradebook` must make the same gradebook nbgrader's own `Gradebook(url)` makes."""

from __future__ import annotations

from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy import create_engine, inspect, text

from coursehub.grading.gradebook import create_gradebook


def _shape(url: str) -> tuple[dict, str, list]:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        tables = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names()}
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            courses = [tuple(r) for r in conn.execute(text("SELECT id FROM course"))]
    finally:
        engine.dispose()
    return tables, version, courses


def test_same_tables_stamp_and_course_row_as_nbgrader(tmp_path: Path) -> None:
    ours, theirs = f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    create_gradebook(ours, course_id="demo-101")
    Gradebook(theirs, course_id="demo-101").close()
    assert _shape(ours) == _shape(theirs)


def test_existing_gradebook_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    create_gradebook(url)
    with Gradebook(url) as gb:
        gb.add_student("s1", first_name="Ada")
    create_gradebook(url)
    with Gradebook(url) as gb:
        assert gb.find_student("s1").first_name == "Ada"
