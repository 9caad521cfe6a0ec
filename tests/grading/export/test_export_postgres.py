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
