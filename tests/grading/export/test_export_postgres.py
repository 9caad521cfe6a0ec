"""The same export from a PostgreSQL gradebook (the gradebook at scale): one snapshot, same numbers."""

from __future__ import annotations

from support.synthetic_gradebook import build_gradebook

from coursehub.grading.export import load_grades, wide_table
from coursehub.grading.export import snapshot as snapshot_mod


def test_postgres_gradebook_matches_sqlite_and_reads_one_snapshot(tmp_path, monkeypatch, pg_url):
    sqlite_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(sqlite_url, 12, 3, seed=9)
    build_gradebook(pg_url, 12, 3, seed=9)
    pg, lite = load_grades(db_url=pg_url), load_grades(db_url=sqlite_url)
    cols = ["assignment", "student_id", "raw_score", "score", "max_score", "timestamp", "duedate"]
    assert pg.long[cols].to_dict("records") == lite.long[cols].to_dict("records")
    assert list(wide_table(pg)["total"]) == list(wide_table(lite)["total"])

    from sqlalchemy import create_engine, text

    writer = create_engine(pg_url)
    real = snapshot_mod.query_frame
    calls = []

    def write_between(conn, sql):
        calls.append(sql)
        if len(calls) == 2:
            with writer.begin() as w:
                w.execute(text("UPDATE grade SET auto_score = 0, manual_score = 0"))
        return real(conn, sql)

    monkeypatch.setattr(snapshot_mod, "query_frame", write_between)
    during = load_grades(db_url=pg_url)
    monkeypatch.undo()
    writer.dispose()
    assert during.long["raw_score"].sum() == pg.long["raw_score"].sum() > 0
    assert load_grades(db_url=pg_url).long["raw_score"].sum() == 0


def test_a_postgres_gradebook_gets_the_grade_index_once(pg_url):
    """`create_gradebook` adds coursehub's index to a PostgreSQL gradebook that lacks it (one made
    by nbgrader, or before the index existed) without touching its rows or its course."""
    from sqlalchemy import create_engine, inspect, text

    from coursehub.grading.export.source import SUMS_INDEX
    from coursehub.grading.gradebook import create_gradebook

    build_gradebook(pg_url, 5, 2, seed=4, course_id="c1")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP INDEX {SUMS_INDEX}"))
            grades = conn.execute(text("SELECT count(*) FROM grade")).scalar_one()
        assert SUMS_INDEX not in {ix["name"] for ix in inspect(engine).get_indexes("grade")}
        create_gradebook(pg_url, "c1")
        assert SUMS_INDEX in {ix["name"] for ix in inspect(engine).get_indexes("grade")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM grade")).scalar_one() == grades > 0
            assert conn.execute(text("SELECT id FROM course")).all() == [("c1",)]
    finally:
        engine.dispose()
