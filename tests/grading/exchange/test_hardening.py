"""Attacks and faults on the grading service, by class: hostile JSON, a full disk, a locked
database, one student flooding, framing, and who may read /metrics. Each answer must be a clear
4xx/5xx with the right status and headers, never a 500 or a partial file."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import sessionmaker
from support.exchange import COURSE, make_notebook
from support.grading import inprocess_service
from support.net import wait_until

from coursehub.grading import metrics
from coursehub.grading.archive import pack
from coursehub.grading.models import Submission
from coursehub.grading.storage import BlobStore

NB = make_notebook().encode()
GOOD = json.loads(NB)


@pytest.fixture(scope="module")
def extra_tokens(fakehub):
    return {
        "prometheus": fakehub.add_user("prometheus", [], scopes=["read:metrics"]),
        "floodee": fakehub.add_user("floodee", [f"course:{COURSE}:student"]),
    }


@pytest.fixture
def svc(tmp_path, courses_dir, fakehub, tokens):
    from coursehub.grading.dashboard.handlers import dashboard_handlers

    with inprocess_service(tmp_path, courses_dir, fakehub, extra_handlers=dashboard_handlers()) as s:
        s.app.settings["coursehub_settings"] = s.settings
        yield s


def auth(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def release(svc, tokens, aid: str) -> None:
    r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/release",
                     data=pack({"p1.ipynb": NB}), headers=auth(tokens["inst"]), timeout=30)
    assert r.status_code == 201, r.text


def submit(svc, token: str, aid: str, files: dict | bytes, upload_id: str | None = None,
           timeout: float = 60) -> requests.Response:
    body = files if isinstance(files, bytes) else pack(files)
    headers = auth(token) | ({"X-Upload-Id": upload_id} if upload_id else {})
    return requests.post(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/submissions", data=body,
                         headers=headers, timeout=timeout)


def stored_rows(svc) -> int:
    with svc.core.sessions() as s:
        return s.scalar(select(func.count()).select_from(Submission))


def blob_files(root: Path) -> list[Path]:
    return [p for p in (root / "blobs").rglob("*") if p.is_file()]


def scrape(svc, token: str) -> str:
    r = requests.get(f"{svc.url}metrics", headers=auth(token), timeout=30)
    assert r.status_code == 200, r.text
    return r.text


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in the metrics")


# --- hostile but valid JSON ------------------------------------------------------------------------
def _nb(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def _raw(metadata: str, minor: str = "5") -> bytes:
    return ('{"cells": [], "metadata": ' + metadata + ', "nbformat": 4, "nbformat_minor": ' + minor + "}").encode()


MALFORMED = {
    "nested 100,000 deep": _raw("[" * 100_000 + "]" * 100_000),
    "nested 900 deep (below the recursion limit)": _raw('{"a":' * 900 + "1" + "}" * 900),
    "5,000-digit integer": _raw('{"n": ' + "9" * 5000 + "}"),
    "5,000-digit float": _raw('{"n": 1.' + "9" * 5000 + "}"),
    "5,000-digit nbformat_minor": _raw("{}", "9" * 5000),
    "negative nbformat_minor": _nb(nbformat_minor=-1),
    "nbformat_minor true": _nb(nbformat_minor=True),
    "nbformat_minor float": _nb(nbformat_minor=5.0),
    "nbformat_minor 10**30": _raw("{}", "1" + "0" * 30),
    "nbformat as text": _nb(nbformat="4"),
    "cells as text": _nb(cells="abc"),
    "metadata as list": _nb(metadata=[]),
    "cell of wrong type": _nb(cells=[42]),
    "NaN": _raw('{"x": NaN}'),
    "Infinity": _raw('{"x": -Infinity}'),
    "float overflow": _raw('{"x": 1e999}'),
    "top-level list": b"[1, 2, 3]",
    "unterminated string of escaped quotes": b'{"x": "' + b'\\"' * 200_000,
    "200,000 tiny numbers, shallow": _raw("[" + ",".join(["1"] * 200_000) + "]", "-1"),
    "not UTF-8": b'{"cells": [], "metadata": {"x": "\xff\xfe"}, "nbformat": 4, "nbformat_minor": 5}',
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_notebooks_are_refused_with_422(svc, tokens, aid, case):
    release(svc, tokens, aid)
    r = submit(svc, tokens["alice"], aid, {"p1.ipynb": MALFORMED[case]})
    assert r.status_code == 422, (case, r.status_code, r.text[:300])
    assert "p1.ipynb" in r.json()["error"] and len(r.text) < 3000
    # the same notebook in a release (the instructor's upload) is refused the same way
    r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/{aid}x/release",
                     data=pack({"p1.ipynb": MALFORMED[case]}), headers=auth(tokens["inst"]), timeout=30)
    assert r.status_code == 422, (case, r.text[:300])
    assert stored_rows(svc) == 0


def test_a_valid_notebook_still_passes(svc, tokens, aid):
    release(svc, tokens, aid)
    assert submit(svc, tokens["alice"], aid, {"p1.ipynb": NB}).status_code == 201


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"ids": [' + b"9" * 5000 + b"]}",
    b'{"ids": [99999999999999999999]}',
    b'{"ids": ["1e9"]}',
    b'{"ids": [1.5]}',
    b'{"ids": [true]}',
    b'{"ids": {"a": 1}}',
    b'{"ids": [-1]}',
    b'{"ids": [NaN]}',
    b'"ids"',
    b"\xff\xfe",
])
def test_collection_bodies_are_refused_not_crashed(svc, tokens, aid, body):
    release(svc, tokens, aid)
    r = requests.post(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/collection", data=body,
                      headers=auth(tokens["inst"]), timeout=30)
    assert r.status_code in (400, 422), r.text[:300]


@pytest.mark.parametrize("path,headers", [
    ("api/submissions?student=" + "a" * 10_000, {}),
    ("api/submissions?course=" + "\u00e9" * 300, {}),
    ("api/releases?assignment=" + "x" * 5000, {}),
    (f"api/courses/{COURSE}/assignments/ps1/collection?duedate=" + "9" * 5000, {}),
    (f"api/courses/{COURSE}/assignments/ps1/feedback?student=" + "b" * 5000, {}),
])
def test_overlong_query_values_are_400(svc, tokens, path, headers):
    r = requests.get(svc.url + path, headers=auth(tokens["inst"]) | headers, timeout=30)
    assert r.status_code == 400, r.text[:300]
    assert len(r.text) < 3000


def test_feedback_secret_and_timestamp_are_bounded(svc, tokens, aid):
    release(svc, tokens, aid)
    url = f"{svc.url}api/courses/{COURSE}/assignments/{aid}/feedback/alice"
    body = pack({"p1.html": b"<p>ok</p>"})
    for params, headers in (({"timestamp": "t" * 5000}, {}),
                            ({"timestamp": "2020"}, {"X-Submission-Secret": "\u00e9" * 10}),
                            ({"timestamp": "2020"}, {"X-Submission-Secret": "s" * 5000})):
        hdrs = auth(tokens["inst"]) | {k: v.encode() for k, v in headers.items()}
        r = requests.put(url, params=params, data=body, headers=hdrs, timeout=30)
        assert r.status_code == 400, r.text[:300]


@pytest.mark.parametrize("job_id", ["9" * 5000, "\u00b2", "-1", "1.5"])
def test_dashboard_ids_are_refused_not_crashed(svc, tokens, job_id):
    r = requests.post(f"{svc.url}dashboard/{COURSE}/jobs/retry", data={"id": job_id},
                      headers=auth(tokens["inst"]), timeout=30, allow_redirects=False)
    assert r.status_code == 400, r.text[:300]
    r = requests.post(f"{svc.url}dashboard/{COURSE}/sync/retry", data={"id": job_id},
                      headers=auth(tokens["inst"]), timeout=30, allow_redirects=False)
    assert r.status_code == 400, r.text[:300]


# --- a full disk -----------------------------------------------------------------------------------
def test_full_disk_is_507_without_partial_files_and_recovers(svc, tokens, extra_tokens, aid, monkeypatch):
    release(svc, tokens, aid)
    store: BlobStore = svc.core.store
    before = blob_files(store.root)
    calls = []

    def half_then_enospc(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            import os

            return os.write(fd, data[: len(data) // 2])  # a partial write lands on disk first
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_chunk", half_then_enospc)
    r = submit(svc, tokens["alice"], aid, {"p1.ipynb": NB})
    assert r.status_code == 507, r.text
    assert "the submission store is full" in r.json()["error"]
    assert list(store.tmp.iterdir()) == [] and blob_files(store.root) == before
    assert stored_rows(svc) == 0
    assert sample(scrape(svc, extra_tokens["prometheus"]), "coursehub_grading_store_full") == 1
    assert sample(scrape(svc, extra_tokens["prometheus"]),
                  'coursehub_grading_submissions_refused_total{reason="store_full"}') >= 1
    # quota errors count as a full store too
    monkeypatch.setattr(store, "write_chunk", lambda fd, data: (_ for _ in ()).throw(OSError(errno.EDQUOT, "quota")))
    assert submit(svc, tokens["alice"], aid, {"p1.ipynb": NB}).status_code == 507
    monkeypatch.undo()  # space is back
    r = submit(svc, tokens["alice"], aid, {"p1.ipynb": NB})
    assert r.status_code == 201, r.text
    assert sample(scrape(svc, extra_tokens["prometheus"]), "coursehub_grading_store_full") == 0


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def test_a_really_full_file_system(tmp_path, courses_dir, fakehub, tokens, aid):
    """The same on a real 2 MiB tmpfs (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "store"
    if not _mount_tmpfs(mount, "2m"):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        from coursehub.grading.db import check_schema, make_engine
        from coursehub.grading.service.app import CatalogSource, limits_from
        from coursehub.grading.service.core import ExchangeCore

        def core_factory(settings):
            engine = make_engine(settings.grading_db_url())
            check_schema(settings.grading_db_url(), engine)
            from coursehub.grading.db import session_factory

            return ExchangeCore(session_factory(engine), BlobStore(mount), CatalogSource(settings.courses_dir),
                                limits_from(settings))

        with inprocess_service(tmp_path / "svc", courses_dir, fakehub, core_factory=core_factory) as s:
            release(s, tokens, aid)
            filler = mount / "filler"
            with open(filler, "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            big = make_notebook(pad=400_000).encode()
            r = submit(s, tokens["bob"], aid, {"p1.ipynb": big})
            assert r.status_code == 507 and "the submission store is full" in r.json()["error"]
            assert list((mount / "tmp").iterdir()) == []
            filler.unlink()
            assert submit(s, tokens["bob"], aid, {"p1.ipynb": big}).status_code == 201
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


# --- a locked database -----------------------------------------------------------------------------
def test_locked_database_is_503_with_retry_after(svc, tokens, aid, monkeypatch):
    release(svc, tokens, aid)
    url = svc.settings.grading_db_url()
    # the service's sessions give up after 0.2 s instead of 30 s, so the test does not wait
    engine = create_engine(url, connect_args={"timeout": 0.2, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _wal(conn, _record):
        conn.execute("PRAGMA busy_timeout=200")

    sessions = sessionmaker(engine, expire_on_commit=False)
    monkeypatch.setattr(svc.core, "sessions", sessions)
    if svc.core.committer is not None:  # submissions' rows are written by the group committer's own sessions
        monkeypatch.setattr(svc.core.committer, "sessions", sessions)
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        r = submit(svc, tokens["alice"], aid, {"p1.ipynb": NB})
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) > 0
        r = requests.delete(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/release",
                            headers=auth(tokens["inst"]), timeout=30)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    r = submit(svc, tokens["alice"], aid, {"p1.ipynb": NB})
    assert r.status_code == 201, r.text
    engine.dispose()


def test_stopping_service_says_when_to_retry(svc, tokens):
    svc.ctx.stopping = True
    try:
        r = requests.get(f"{svc.url}api/courses", headers=auth(tokens["alice"]), timeout=30)
    finally:
        svc.ctx.stopping = False
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0


# --- one student flooding --------------------------------------------------------------------------
def test_a_flooding_student_is_bounded_and_others_are_admitted(svc, tokens, extra_tokens, aid, monkeypatch):
    """One student's uploads hold at most `per_student` slots; the rest get 429 + Retry-After at
    once, and another student's submit is admitted and answered while the flood is still held."""
    release(svc, tokens, aid)
    store = svc.core.store
    gate, inside = threading.Event(), []
    real = store.write_chunk

    def held(fd, data):
        if b"FLOOD" in bytes(data):
            inside.append(1)
            gate.wait(60)
        return real(fd, data)

    monkeypatch.setattr(store, "write_chunk", held)
    flood = {"p1.ipynb": make_notebook("FLOOD = 1").encode()}
    limit = svc.ctx.slots.per_student
    token = extra_tokens["floodee"]
    pool = ThreadPoolExecutor(max_workers=40)
    try:
        first = [pool.submit(submit, svc, token, aid, flood) for _ in range(limit)]
        wait_until(lambda: len(inside) == limit, timeout=60, what="the first uploads to be storing")
        rest = [f.result() for f in [pool.submit(submit, svc, token, aid, flood) for _ in range(30)]]
        assert {r.status_code for r in rest} == {429}
        assert all(int(r.headers["Retry-After"]) > 0 for r in rest)
        other = submit(svc, tokens["alice"], aid, {"p1.ipynb": NB})
        assert not gate.is_set()  # answered while the flood still holds its slots
        assert other.status_code == 201, other.text
    finally:
        gate.set()
        done = [f.result() for f in first]
        pool.shutdown()
    assert [r.status_code for r in done] == [201] * limit
    assert svc.ctx.slots.in_flight("floodee") == 0
    assert submit(svc, token, aid, flood).status_code == 201  # slots come back


# --- security headers ------------------------------------------------------------------------------
def _framing_ok(headers) -> bool:
    csp = headers.get("Content-Security-Policy", "")
    ancestors = next((d.strip() for d in csp.split(";") if d.strip().startswith("frame-ancestors")), "")
    return (ancestors in ("frame-ancestors 'self'", "frame-ancestors 'none'")
            and headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN"))


def test_every_answer_carries_the_security_headers(svc, tokens):
    inst = auth(tokens["inst"])
    answers = {
        "health": requests.get(f"{svc.url}health", timeout=30),
        "api": requests.get(f"{svc.url}api/courses", headers=inst, timeout=30),
        "api error": requests.get(f"{svc.url}api/courses", timeout=30),
        "not found": requests.get(f"{svc.url}no/such/page", timeout=30),
        "home": requests.get(svc.url, headers=inst, timeout=30, allow_redirects=False),
        "home, signed out": requests.get(svc.url, timeout=30, allow_redirects=False),
        "dashboard": requests.get(f"{svc.url}dashboard/{COURSE}/", headers=inst, timeout=30),
        "dashboard refused": requests.get(f"{svc.url}dashboard/{COURSE}/", headers=auth(tokens["alice"]),
                                          timeout=30),
        "oauth callback": requests.get(f"{svc.url}oauth_callback", timeout=30, allow_redirects=False),
        "metrics refused": requests.get(f"{svc.url}metrics", timeout=30),
    }
    assert answers["dashboard"].status_code == 200 and answers["dashboard refused"].status_code == 403
    for name, r in answers.items():
        assert _framing_ok(r.headers), (name, r.status_code, dict(r.headers))
        assert r.headers.get("X-Content-Type-Options") == "nosniff", name
        assert r.headers.get("Referrer-Policy"), name


def test_the_dashboard_cannot_be_framed_by_another_origin(svc, tokens):
    r = requests.get(f"{svc.url}dashboard/{COURSE}/", headers=auth(tokens["inst"]), timeout=30)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    ancestors = [d.split()[1:] for d in csp.split(";") if d.strip().startswith("frame-ancestors")]
    assert ancestors == [["'self'"]]  # no other origin, no wildcard, no scheme source
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "<form" in r.text  # the buttons a clickjacker would want are on this page


# --- metrics ---------------------------------------------------------------------------------------
def test_metrics_need_the_read_metrics_scope(svc, tokens, extra_tokens):
    assert requests.get(f"{svc.url}metrics", timeout=30).status_code == 401
    assert requests.get(f"{svc.url}metrics", headers=auth("not-a-token"), timeout=30).status_code == 401
    r = requests.get(f"{svc.url}metrics", headers=auth(tokens["inst"]), timeout=30)
    assert r.status_code == 403 and "coursehub_" not in r.text
    r = requests.get(f"{svc.url}metrics?token={tokens['inst']}", timeout=30)
    assert r.status_code in (401, 403)
    text = scrape(svc, extra_tokens["prometheus"])
    for series in ('coursehub_grading_queue_jobs{state="dead"}',
                   'coursehub_grading_sandbox_kills_total{reason="memory"}',
                   'coursehub_grading_lms_sync_total{outcome="sent"}',
                   'coursehub_grading_submissions_refused_total{reason="rate_limited"}',
                   'coursehub_grading_submissions_received_total{kind="late"}',
                   'coursehub_grading_job_duration_seconds_count{outcome="graded"}',
                   'coursehub_grading_db_busy_total{component="worker"}',
                   "coursehub_grading_store_full"):
        sample(text, series)  # present before any event (label values pre-created)


def test_queue_depth_is_read_at_scrape(svc, extra_tokens):
    from coursehub.grading.queue import JobQueue

    q = JobQueue(svc.settings.grading_db_url())
    before = sample(scrape(svc, extra_tokens["prometheus"]), 'coursehub_grading_queue_jobs{state="queued"}')
    q.enqueue(COURSE, "ps1", "alice", {})
    q.enqueue(COURSE, "ps1", "bob", {})
    after = sample(scrape(svc, extra_tokens["prometheus"]), 'coursehub_grading_queue_jobs{state="queued"}')
    assert after == before + 2
    q.engine.dispose()


def test_submission_outcomes_are_counted(svc, tokens, extra_tokens, aid):
    release(svc, tokens, aid)
    text = scrape(svc, extra_tokens["prometheus"])
    on_time = sample(text, 'coursehub_grading_submissions_received_total{kind="on_time"}')
    dup = sample(text, 'coursehub_grading_submissions_received_total{kind="duplicate"}')
    invalid = sample(text, 'coursehub_grading_submissions_refused_total{reason="invalid"}')
    assert submit(svc, tokens["bob"], aid, {"p1.ipynb": NB}, upload_id="u-1").status_code == 201
    assert submit(svc, tokens["bob"], aid, {"p1.ipynb": NB}, upload_id="u-1").status_code == 200
    assert submit(svc, tokens["bob"], aid, {"p1.ipynb": b"{"}).status_code == 422
    text = scrape(svc, extra_tokens["prometheus"])
    assert sample(text, 'coursehub_grading_submissions_received_total{kind="on_time"}') == on_time + 1
    assert sample(text, 'coursehub_grading_submissions_received_total{kind="duplicate"}') == dup + 1
    assert sample(text, 'coursehub_grading_submissions_refused_total{reason="invalid"}') == invalid + 1
    assert metrics.SUBMISSIONS_RECEIVED.labels("on_time")._value.get() >= 1


# --- idempotency keys ------------------------------------------------------------------------------
def test_upload_id_is_scoped_to_assignment_and_content(svc, tokens, aid):
    other = aid + "b"
    release(svc, tokens, aid)
    release(svc, tokens, other)
    first = submit(svc, tokens["bob"], aid, {"p1.ipynb": NB}, upload_id="same-key")
    assert first.status_code == 201
    again = submit(svc, tokens["bob"], aid, {"p1.ipynb": NB}, upload_id="same-key")
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    # the same key for another assignment, or other content, is not "already stored"
    r = submit(svc, tokens["bob"], other, {"p1.ipynb": NB}, upload_id="same-key")
    assert r.status_code == 409, r.text
    r = submit(svc, tokens["bob"], aid, {"p1.ipynb": make_notebook("changed").encode()}, upload_id="same-key")
    assert r.status_code == 409, r.text
    assert stored_rows(svc) == 1
    # another student's identical key is theirs alone
    assert submit(svc, tokens["alice"], aid, {"p1.ipynb": NB}, upload_id="same-key").status_code == 201


def test_database_errors_become_503_with_retry_after_or_507():
    from sqlalchemy.exc import OperationalError

    from coursehub.grading.service.handlers import database_refusal

    locked = database_refusal(OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")))
    assert locked.status == 503 and locked.retry_after and locked.retry_after > 0
    full = database_refusal(OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")))
    assert full.status == 507 and "full" in full.message


@pytest.mark.parametrize("name", ["a" * (10 * 2**20), "d/" * 200_000 + "p1.ipynb", "x\n" * 100_000])
def test_huge_member_names_are_not_echoed(svc, tokens, aid, name, caplog):
    import io
    import tarfile

    release(svc, tokens, aid)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    caplog.set_level("INFO")
    r = submit(svc, tokens["alice"], aid, buf.getvalue())
    assert 400 <= r.status_code < 500 and len(r.content) < 3000, (r.status_code, len(r.content))
    assert max((len(rec.getMessage()) for rec in caplog.records), default=0) < 5000
