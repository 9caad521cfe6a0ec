"""Faults: the service SIGKILLed in the middle of uploads, PostgreSQL restarted during a burst.

An acknowledged submission is never lost; an interrupted one is never half visible (a row without
its complete, checksummed file); a retry with the same upload id stores it exactly once."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from support.exchange import COURSE, MEMBERS, make_courses, make_notebook
from support.fakehub import FakeHub
from support.grading import running_service

from coursehub.grading.archive import pack
from coursehub.grading.models import Submission

ASSIGNMENT = "ps1"


@pytest.fixture(scope="module")
def hub():
    h = FakeHub().start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def tokens(hub):
    toks = {name: hub.add_user(name, groups) for name, groups in MEMBERS.items()}
    for i in range(40):
        toks[f"s{i}"] = hub.add_user(f"s{i}", [f"course:{COURSE}:student"])
    return toks


def upload(svc_url: str, token: str, body: bytes, upload_id: str, timeout: float = 30) -> requests.Response:
    return requests.post(f"{svc_url}api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", data=body,
                         headers={"Authorization": f"token {token}", "X-Upload-Id": upload_id}, timeout=timeout)


def release(svc_url: str, token: str) -> None:
    r = requests.put(f"{svc_url}api/courses/{COURSE}/assignments/{ASSIGNMENT}/release",
                     data=pack({"p1.ipynb": make_notebook().encode()}), params={"force": "1"},
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 201, r.text


def check_store(db_url: str, storage: Path) -> list[Submission]:
    """Every visible submission has its complete file with the recorded checksum."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Submission.blob_path, Submission.sha256, Submission.upload_id,
                                   Submission.student_id)).all()
        dupes = conn.execute(select(Submission.upload_id, func.count()).group_by(
            Submission.student_id, Submission.upload_id).having(func.count() > 1)).all()
    engine.dispose()
    assert dupes == []
    for blob_path, sha, _, _ in rows:
        assert hashlib.sha256((storage / blob_path).read_bytes()).hexdigest() == sha
    return rows


def test_sigkill_mid_upload(tmp_path, hub, tokens):
    courses = make_courses(tmp_path / "courses")
    with running_service(tmp_path, courses, hub) as svc:
        db_url = f"sqlite:///{tmp_path / 'state' / 'grading.sqlite'}"
        storage = tmp_path / "state" / "exchange"
        release(svc.url, tokens["inst"])
        body = pack({"p1.ipynb": make_notebook(pad=150_000).encode()})

        # 1. A body cut off halfway by the crash: the client gets an error, nothing becomes visible.
        sock = socket.create_connection(("127.0.0.1", svc.port))
        head = (f"POST /services/grading/api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: token {tokens['alice']}\r\nX-Upload-Id: cut-1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.5)
        # 2. Many uploads in flight at the moment of the kill.
        results: dict[str, object] = {}

        def student(i: int) -> None:
            for n in range(50):
                uid = f"s{i}-{n}"
                try:
                    r = upload(svc.url, tokens[f"s{i}"], body, uid, timeout=10)
                    results[uid] = r.status_code
                except requests.RequestException as e:
                    results[uid] = e
                    return

        threads = [threading.Thread(target=student, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        while sum(1 for v in list(results.values()) if v == 201) < 20:
            time.sleep(0.01)
        svc.kill()
        for t in threads:
            t.join(30)
        with pytest.raises(OSError):
            sock.sendall(body[len(body) // 2:])
            if not sock.recv(1024):
                raise ConnectionResetError("closed")
        sock.close()

        acked = {uid for uid, v in results.items() if v == 201}
        failed = {uid for uid, v in results.items() if v != 201}
        assert acked and failed  # the kill really happened mid-burst
        rows = check_store(db_url, storage)
        stored = {r.upload_id for r in rows}
        assert acked <= stored  # every acknowledged submission survived the crash
        assert "cut-1" not in stored

        # Restart: leftovers are swept, and retries with the same ids store each upload once.
        svc.start()
        assert list((storage / "tmp").iterdir()) == []
        for uid in sorted(failed) + ["cut-1"]:
            who = "alice" if uid == "cut-1" else uid.split("-")[0]
            r = upload(svc.url, tokens[who], body, uid)
            assert r.status_code in (200, 201), r.text
        rows = check_store(db_url, storage)
        assert {r.upload_id for r in rows} == acked | failed | {"cut-1"}


def test_postgres_restart_during_burst(tmp_path, hub, tokens, pg_server, pg_url):
    courses = make_courses(tmp_path / "courses")
    pg = pg_server  # the session's shared server: this test restarts it, its database is its own
    with running_service(tmp_path, courses, hub, db_url=pg_url) as svc:
        storage = tmp_path / "state" / "exchange"
        release(svc.url, tokens["inst"])
        body = pack({"p1.ipynb": make_notebook(pad=20_000).encode()})
        acked: dict[str, int] = {}
        errors: list[str] = []
        lock = threading.Lock()

        def student(i: int) -> None:
            for _n in range(15):
                uid = uuid.uuid4().hex
                for _attempt in range(60):  # what the plugin does: retry with the same id
                    try:
                        r = upload(svc.url, tokens[f"s{i}"], body, uid, timeout=20)
                    except requests.RequestException as e:
                        errors.append(type(e).__name__)
                        time.sleep(0.2)
                        continue
                    if r.status_code in (200, 201):
                        with lock:
                            acked[uid] = r.json()["id"]
                        break
                    errors.append(str(r.status_code))
                    assert r.status_code == 503, r.text
                    time.sleep(0.2)

        threads = [threading.Thread(target=student, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        while len(acked) < 30:
            time.sleep(0.01)
        at_restart = len(acked)
        pg.restart("fast")
        for t in threads:
            t.join(120)
        assert len(acked) == 150
        rows = check_store(pg_url, storage)
        assert {r.upload_id for r in rows} == set(acked)
        assert len(rows) == 150
        assert at_restart < 150  # the restart happened during the burst
