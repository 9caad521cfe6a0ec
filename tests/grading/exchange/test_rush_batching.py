"""Group commit (issue 17, the deadline rush): concurrent submissions share one commit, each is
acknowledged only once its row is committed, and a failed commit is reported to every request in it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Column, Integer, String, UniqueConstraint, create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from support.exchange import OTHER, make_courses, make_notebook

from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.service.batching import GroupCommitter
from coursehub.grading.service.errors import ServiceError
from coursehub.grading.storage import BlobStore
from coursehub.platform.courses import load_catalog


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    __table_args__ = (UniqueConstraint("key"),)
    id = Column(Integer, primary_key=True)
    key = Column(String, nullable=False)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'rows.sqlite'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    yield url, sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def keys_in(url: str) -> list[str]:
    """What a fresh connection (another process's view) finds committed."""
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            return sorted(s.scalars(select(Row.key)))
    finally:
        engine.dispose()


def add(key: str):
    def unit(s: Session) -> Row:
        row = Row(key=key)
        s.add(row)
        return row
    return unit


def held_writer(committer: GroupCommitter) -> tuple[threading.Event, threading.Event]:
    """Occupy the writer thread with one unit until released, so that what follows queues up."""
    started, release = threading.Event(), threading.Event()

    def blocker(s: Session) -> str:
        started.set()
        release.wait(30)
        return "first"

    def hold() -> None:
        try:
            committer.run(blocker)
        except Exception:  # noqa: BLE001 - the broken-disk test fails this one too
            pass

    threading.Thread(target=hold, daemon=True).start()
    assert started.wait(30)
    return started, release


def test_queued_units_share_one_commit_and_each_is_durable_when_acknowledged(db):
    url, sessions = db
    committer = GroupCommitter(sessions, max_batch=64)
    _, release = held_writer(committer)
    acked: list[tuple[str, list[str]]] = []
    lock = threading.Lock()

    def submit(key: str) -> None:
        row = committer.run(add(key))
        assert row.id is not None
        seen = keys_in(url)  # read the moment the request is answered, from another connection
        with lock:
            acked.append((key, seen))

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(submit, f"k{i:02d}") for i in range(20)]
        while committer._queue.qsize() < 20:
            threading.Event().wait(0.01)
        assert keys_in(url) == []  # nothing acknowledged or committed while the writer was held
        release.set()
        for f in futures:
            f.result(30)
    assert all(key in seen for key, seen in acked)  # acknowledged => already committed
    assert keys_in(url) == [f"k{i:02d}" for i in range(20)]
    assert committer.batches == 2 and committer.units == 21  # the held unit, then one commit for 20
    committer.close()


def test_a_failed_commit_is_reported_to_every_waiting_request(db):
    url, _ = db

    class BrokenDisk(Session):
        def commit(self) -> None:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    engine = create_engine(url)
    committer = GroupCommitter(sessionmaker(engine, class_=BrokenDisk), max_batch=64)
    _, release = held_writer(committer)
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(committer.run, add(f"k{i}")) for i in range(10)]
        while committer._queue.qsize() < 10:
            threading.Event().wait(0.01)
        release.set()
        for f in futures:
            with pytest.raises(OperationalError):
                f.result(30)
    assert keys_in(url) == []
    committer.close()
    engine.dispose()


def test_a_duplicate_fails_alone_and_a_refused_unit_does_not_sink_the_batch(db):
    url, sessions = db
    with sessions() as s:
        s.add(Row(key="taken"))
        s.commit()
    committer = GroupCommitter(sessions, max_batch=64)
    _, release = held_writer(committer)

    def refused(s: Session) -> None:
        raise ServiceError(409, "no")

    def adds_then_fails(s: Session) -> None:
        s.add(Row(key="half-done"))
        raise ValueError("failed after adding a row")

    units = [add("a"), add("taken"), refused, add("b"), adds_then_fails, add("c")]
    with ThreadPoolExecutor(len(units)) as pool:
        futures = []
        for u in units:
            futures.append(pool.submit(committer.run, u))
            while committer._queue.qsize() < len(futures):  # keep the order in the batch
                threading.Event().wait(0.005)
        release.set()
        outcomes = []
        for f in futures:
            try:
                f.result(30)
                outcomes.append("ok")
            except Exception as e:  # noqa: BLE001
                outcomes.append(type(e).__name__)
    assert outcomes == ["ok", "IntegrityError", "ServiceError", "ok", "ValueError", "ok"]
    assert keys_in(url) == ["a", "b", "c", "taken"]  # nothing of the failed units was committed
    committer.close()


def test_close_commits_what_is_queued_then_refuses(db):
    url, sessions = db
    committer = GroupCommitter(sessions)
    committer.run(add("x"))
    committer.close()
    assert keys_in(url) == ["x"]
    with pytest.raises(RuntimeError):
        committer.run(add("y"))


def test_core_submissions_through_the_committer_concurrently(tmp_path):
    """Many students at once through ExchangeCore with group commit: every acknowledged submission
    is in the database (read from a new connection), retries are duplicates, nothing is lost."""
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.models import Submission
    from coursehub.grading.service.core import Caller, ExchangeCore

    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    sessions = session_factory(engine)
    committer = GroupCommitter(sessions)
    core = ExchangeCore(sessions, BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits(), committer=committer)
    prof = Caller("prof2", {OTHER: frozenset({"instructor"})})
    core.release(prof, OTHER, "hw1", pack({"p1.ipynb": make_notebook().encode()}), force=False)
    students = [Caller(f"st{i:02d}", {OTHER: frozenset({"student"})}) for i in range(24)]
    data = {c.name: pack({"p1.ipynb": make_notebook(c.name).encode()}) for c in students}

    def submit(c: Caller, upload: str) -> dict:
        return core.submit(c, OTHER, "hw1", data[c.name], upload_id=upload)

    with ThreadPoolExecutor(12) as pool:
        first = list(pool.map(lambda c: submit(c, f"u-{c.name}"), students))
        again = list(pool.map(lambda c: submit(c, f"u-{c.name}"), students))  # retries: same upload id
    assert not any(i["duplicate"] for i in first) and all(i["duplicate"] for i in again)
    assert [i["id"] for i in first] == [i["id"] for i in again]
    other = make_engine(url)
    with Session(other) as s:
        stored = {sid: n for sid, n in s.execute(select(Submission.student_id, func.count()).group_by(
            Submission.student_id))}
    other.dispose()
    assert stored == {c.name: 1 for c in students}
    # The same upload id for different content is refused, and its blob is not kept.
    with pytest.raises(ServiceError) as e:
        core.submit(students[0], OTHER, "hw1", pack({"p1.ipynb": make_notebook("changed").encode()}),
                    upload_id=f"u-{students[0].name}")
    assert e.value.status == 409
    blobs = list((tmp_path / "store" / "blobs" / OTHER / "submission").rglob("*.tar"))
    assert len(blobs) == len(students)
    committer.close()
    engine.dispose()


def test_core_reports_a_commit_in_doubt_as_503_and_keeps_the_blob(tmp_path):
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import Caller, ExchangeCore

    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    sessions = session_factory(engine)

    class LostConnection(Session):
        def commit(self) -> None:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    committer = GroupCommitter(sessionmaker(engine, class_=LostConnection, expire_on_commit=False))
    core = ExchangeCore(sessions, BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits(), committer=committer)
    prof = Caller("prof2", {OTHER: frozenset({"instructor"})})
    core.release(prof, OTHER, "hw1", pack({"p1.ipynb": make_notebook().encode()}), force=False)
    alice = Caller("alice", {OTHER: frozenset({"student"})})
    with pytest.raises(ServiceError) as e:
        core.submit(alice, OTHER, "hw1", pack({"p1.ipynb": make_notebook("a").encode()}), upload_id="u1")
    assert e.value.status == 503 and e.value.retry_after
    # In doubt: the blob stays (a retry finds the row if the commit happened; orphans are swept).
    assert len(list((tmp_path / "store" / "blobs").rglob("*.tar"))) == 2  # the release's and this one
    committer.close()
    engine.dispose()


def test_the_service_core_uses_group_commit(tmp_path):
    from coursehub.grading.service.app import make_core
    from coursehub.platform.settings import load_settings

    settings_file = tmp_path / "settings.yaml"
    make_courses(tmp_path / "courses")
    settings_file.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {tmp_path / 'courses'}\n")
    core = make_core(load_settings(settings_file))
    assert isinstance(core.committer, GroupCommitter)
    core.committer.close()


def test_committer_refuses_a_zero_batch():
    with pytest.raises(ValueError):
        GroupCommitter(lambda: None, max_batch=0)  # type: ignore[arg-type, return-value]


def test_recent_rate_counts_units_queued_in_the_window(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rate.sqlite'}")
    committer = GroupCommitter(sessionmaker(engine), max_batch=8)
    try:
        assert committer.recent_rate(10.0) == 0.0
        for _ in range(30):
            committer.run(lambda s: None)
        assert committer.recent_rate(10.0) == pytest.approx(3.0)
        assert committer.recent_rate(1e-9) == 0.0  # none in an (almost) empty window
    finally:
        committer.close()
