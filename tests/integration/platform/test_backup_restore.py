"""`coursehub backup` of a running course during a burst of submissions, restored into a fresh state
folder: the same users, LTI identities, submissions (checksums), gradebook, keys and cookie secret come
back, and a hub started on the restored folder gives a returning student the same account."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest
import requests
import yaml
from fakelms.client import local_lms_launch
from nbgrader.api import Gradebook
from support.exchange import make_notebook
from support.hub import running_hub
from support.net import wait_until

from coursehub.backup import backup
from coursehub.grading.archive import pack
from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path
from coursehub.platform.settings import load_settings
from coursehub.restore import restore

pytestmark = pytest.mark.hubcompat
COURSE, ASSIGNMENT = "demo-101", "ps1"
STUDENTS = ("ana", "ben", "cai", "dee")
LMS = {"auth": {"dev_login": False, "lti": {"local_lms": True}}}
IDENTITIES = "select issuer, subject, username, display_name from coursehub_lti_identities"


def lms_launch(hub, person: str, role: str = "student") -> str:
    """A launch from the local LMS page; the hub username it gave `person`."""
    r = local_lms_launch(requests.Session(), hub.url, course=COURSE, kind="course", item="", role=role, person=person)
    assert r.status_code == 302, r.text[:500]
    rows = _rows(hub.state_dir / "lti.sqlite", IDENTITIES)
    return next(row[2] for row in rows if row[3] == person)


def _grading(hub, token: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{hub.url}/services/grading/api/{path}", timeout=60,
                            headers={"Authorization": f"token {token}", **kw.pop("headers", {})}, **kw)


def _submit(hub, token: str, n: int) -> dict:
    body = pack({"p1.ipynb": make_notebook(f"print({n})").encode()})
    r = _grading(hub, token, "POST", f"courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", data=body,
                 headers={"Content-Type": "application/x-tar", "X-Upload-Id": _upload_id(token, n)})
    r.raise_for_status()
    return r.json()


def _upload_id(token: str, n: int) -> str:
    return hashlib.sha256(f"{token}:{n}".encode()).hexdigest()[:32]


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return sorted(c.execute(sql).fetchall())


def test_backup_during_a_burst_restores_the_same_course(tmp_path):
    (tmp_path / "live").mkdir()
    with running_hub(tmp_path / "live", settings=LMS) as hub:
        state = hub.state_dir
        inst = lms_launch(hub, "Ines Teacher", role="instructor")
        r = _grading(hub, hub.user_token(inst), "PUT", f"courses/{COURSE}/assignments/{ASSIGNMENT}/release",
                     data=pack({"p1.ipynb": make_notebook().encode()}), headers={"Content-Type": "application/x-tar"})
        assert r.status_code in (200, 201), r.text
        tokens, names = {}, {}
        for s in STUDENTS:
            names[s] = lms_launch(hub, f"{s.title()} Student")
            tokens[s] = hub.user_token(names[s])
        before = [_submit(hub, tokens[s], 0) for s in STUDENTS]  # acknowledged before the backup
        load_or_create_key_pair(tool_key_path(state))
        course_dir = state / "course-dirs" / COURSE
        course_dir.mkdir(parents=True, exist_ok=True)
        with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:  # graded, as after autograde
            gb.update_or_create_assignment(ASSIGNMENT)
            gb.update_or_create_notebook("p1", ASSIGNMENT)
            gb.update_or_create_grade_cell("q1", "p1", ASSIGNMENT, max_score=10, cell_type="code")
            for i, s in enumerate(STUDENTS):
                gb.update_or_create_student(names[s], first_name=s.title(), email=f"{s}@example.edu")
                submission = gb.add_submission(ASSIGNMENT, names[s])
                submission.notebooks[0].grades[0].manual_score = 6 + i
                gb.db.commit()

        stop = threading.Event()
        errors: list[BaseException] = []
        done: list[str] = []

        def burst(student: str) -> None:
            n = 1
            while not stop.is_set():
                try:
                    _submit(hub, tokens[student], n)
                    done.append(student)
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return
                n += 1

        threads = [threading.Thread(target=burst, args=(s,)) for s in STUDENTS]
        for t in threads:
            t.start()
        wait_until(lambda: set(done) == set(STUDENTS) or errors, timeout=120, what="the burst")
        try:
            settings = load_settings(hub.settings_file)
            manifest = backup(settings, tmp_path / "backup", progress=False)
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        assert not errors, errors
        users = _rows(state / "jupyterhub.sqlite", "select name from users")
        identities = _rows(state / "lti.sqlite", IDENTITIES)

    # Restore into a fresh state folder (other settings: only the state folder differs).
    data = yaml.safe_load(hub.settings_file.read_text())
    fresh = tmp_path / "fresh"
    data["state_dir"] = str(fresh / "state")
    (fresh).mkdir()
    (fresh / "settings.yaml").write_text(yaml.safe_dump(data))
    restored = load_settings(fresh / "settings.yaml")
    restore(tmp_path / "backup", restored, progress=False)
    new = restored.state_dir

    assert _rows(new / "jupyterhub.sqlite", "select name from users") == users
    assert _rows(new / "lti.sqlite", IDENTITIES) == identities and len(identities) == len(STUDENTS) + 1
    subs = _rows(new / "grading.sqlite", "select student_id, upload_id, blob_path, sha256 from exchange_submissions")
    uploads = {(row[0], row[1]) for row in subs}
    for s in STUDENTS:  # every submission acknowledged before the backup is there
        assert (names[s], _upload_id(tokens[s], 0)) in uploads
    assert len(before) == len(STUDENTS)
    for _student, _upload, blob_path, digest in subs:  # and every row finds its blob, intact
        blob = new / "exchange" / blob_path
        assert blob.is_file(), blob_path
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest
    grades = ("select s.id, s.first_name, s.email, g.manual_score from grade g join submitted_notebook n on"
              " g.notebook_id = n.id join submitted_assignment a on n.assignment_id = a.id join student s"
              " on a.student_id = s.id")
    restored_grades = _rows(new / "course-dirs" / COURSE / "gradebook.db", grades)
    assert restored_grades == _rows(state / "course-dirs" / COURSE / "gradebook.db", grades)
    assert (names["ana"], "Ana", "ana@example.edu", 6.0) in restored_grades and len(restored_grades) == 4
    assert (new / "lti" / "tool-key.pem").read_bytes() == (state / "lti" / "tool-key.pem").read_bytes()
    assert (new / "jupyterhub_cookie_secret").read_bytes() == (state / "jupyterhub_cookie_secret").read_bytes()
    assert len(manifest["files"]) > 5

    # A hub on the restored folder knows the same users and groups; a returning student (a new
    # launch) gets the same account, and nobody new appears.
    # (On the same public URL: the local LMS's issuer is that URL, and identities are per issuer.)
    port = data["hub"]["port"]
    with running_hub(fresh, settings={**LMS, "state_dir": str(new), "hub": {"port": port}}) as hub2:
        assert "course:demo-101:instructor" in hub2.user(inst)["groups"]
        assert lms_launch(hub2, "Ana Student") == names["ana"]
        assert sorted((u["name"],) for u in hub2.api("GET", "/users").json()) == users
