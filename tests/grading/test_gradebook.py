"""`create_gradebook` must make the same gradebook nbgrader's own `Gradebook(url)` makes; `upsert_students`
writes a whole roster in one commit and loses nothing to a concurrent writer."""

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


def _students(url: str) -> dict[str, tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {r[0]: tuple(r[1:]) for r in conn.execute(text(
                "SELECT id, first_name, last_name, email, lms_user_id FROM student"))}
    finally:
        engine.dispose()


def test_students_are_upserted_in_one_commit(tmp_path: Path) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from coursehub.grading.gradebook import upsert_students

    url = f"sqlite:///{tmp_path / 'gb.db'}"
    create_gradebook(url, "demo-101")
    with Gradebook(url) as gb:
        gb.add_student("s0", first_name="Ada", email="ada@uni.example")
    people = [{"id": f"s{i}", "first_name": f"F{i}", "last_name": None, "email": None, "lms_user_id": f"{i}"}
              for i in range(1, 1201)]  # more than one IN (...) batch
    people.append({"id": "s0", "first_name": None, "last_name": "Lovelace"})  # None keeps what the row has
    commits = []
    listener = lambda conn: commits.append(conn)  # noqa: E731
    event.listen(Engine, "commit", listener)
    try:
        assert upsert_students(url, [{"id": "t1", "first_name": "T"}]) == 1
        for_one = len(commits)  # opening the gradebook commits too (nbgrader's create_all, course check)
        commits.clear()
        assert upsert_students(url, people) == 1201
    finally:
        event.remove(Engine, "commit", listener)
    assert len(commits) == for_one  # 1,201 students: as many commits as for one
    rows = _students(url)
    assert len(rows) == 1202
    assert rows["s0"] == ("Ada", "Lovelace", "ada@uni.example", None)
    assert rows["s7"] == ("F7", None, None, "7")
    assert upsert_students(url, people) == 0  # nothing changed: nothing written


def test_a_student_added_by_another_writer_meanwhile_is_updated_not_lost(tmp_path: Path, monkeypatch) -> None:
    """The batch's INSERT meets a row the formgrader added after the batch read: redone one by one."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from coursehub.grading.gradebook import upsert_students

    path = tmp_path / "gb.db"
    url = f"sqlite:///{path}"
    create_gradebook(url, "demo-101")
    raced = []

    def concurrent_insert(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO student") and not raced:
            raced.append(True)
            other = sqlite3.connect(path)
            other.execute("INSERT INTO student (id, first_name) VALUES ('s2', 'Other')")
            other.commit()
            other.close()

    event.listen(Engine, "before_cursor_execute", concurrent_insert)
    try:
        changed = upsert_students(url, [{"id": "s1", "first_name": "One"}, {"id": "s2", "first_name": "Two"}])
    finally:
        event.remove(Engine, "before_cursor_execute", concurrent_insert)
    assert raced
    assert changed == 2
    rows = _students(url)
    assert rows["s1"][0] == "One" and rows["s2"][0] == "Two"
