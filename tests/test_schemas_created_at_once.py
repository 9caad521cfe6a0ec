"""Processes that find a database empty at the same moment create its schema once, whichever
database it is: nbgrader's gradebook (the grading service writing deadlines while a worker or the
CLI opens the course), the grading database (two services starting on a new one) and the hub's LTI
store. Each process is released by a barrier at the same instant, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import traceback

import sqlalchemy as sa

N = 6


def _gradebook(url: str) -> None:
    from coursehub.grading.gradebook import create_gradebook

    create_gradebook(url, "demo-101")


def _gradebook_via_autograde_writer(url: str) -> None:
    from coursehub.grading.autograde.gradebook import GradebookWriter

    GradebookWriter(url, "demo-101").close()


def _grading_db(url: str) -> None:
    from coursehub.grading.db import check_schema, make_engine

    engine = make_engine(url)
    try:
        check_schema(url, engine)
    finally:
        engine.dispose()


def _lti(url: str) -> None:
    from coursehub.platform.lti.store import LtiStore

    LtiStore(url).engine.dispose()


def _run(args: tuple) -> str:
    """The child's traceback as text (a pool would only re-raise the exception, not say where)."""
    fn, url, barrier = args
    try:
        barrier.wait(timeout=120)
        fn(url)
        return ""
    except Exception:
        return traceback.format_exc()


def _at_once(fns: list, url: str) -> list[str]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(fns))
        with ctx.Pool(len(fns)) as pool:
            return pool.map(_run, [(fn, url, barrier) for fn in fns])


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_a_gradebook_opened_by_several_processes_at_once_is_created_once(db_url):
    errors = _at_once([_gradebook, _gradebook_via_autograde_writer] * (N // 2), db_url)
    assert not any(errors), "\n\n".join(e for e in errors if e)
    assert _count(db_url, "SELECT count(*) FROM alembic_version") == 1
    assert _count(db_url, "SELECT count(*) FROM course WHERE id = 'demo-101'") == 1


def test_a_course_row_is_added_once_to_a_gradebook_that_lacks_it(db_url):
    from coursehub.grading.gradebook import create_gradebook

    create_gradebook(db_url)  # the tables, no course row (nbgrader's default when no course is named)
    errors = _at_once([_gradebook] * N, db_url)
    assert not any(errors), "\n\n".join(e for e in errors if e)
    assert _count(db_url, "SELECT count(*) FROM course") == 1


def test_a_new_grading_database_opened_by_several_services_at_once_is_created_once(db_url):
    from coursehub.grading import db

    errors = _at_once([_grading_db] * N, db_url)
    assert not any(errors), "\n\n".join(e for e in errors if e)
    engine = db.make_engine(db_url)
    try:
        assert db.schema_status(engine).up_to_date
    finally:
        engine.dispose()
    assert _count(db_url, "SELECT count(*) FROM alembic_version") == len(db.code_heads())


def test_a_new_lti_store_opened_by_several_processes_at_once_is_migrated_once(db_url):
    from coursehub.platform.lti import schema

    errors = _at_once([_lti] * N, db_url)
    assert not any(errors), "\n\n".join(e for e in errors if e)
    assert _count(db_url, f"SELECT count(*) FROM {schema.VERSION_TABLE}") == 1
