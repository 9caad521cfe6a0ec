"""Who may do what: identity and time come from the service; roles come from hub groups only.

Attacks are made both through the stock nbgrader apps (what a student's server runs) and with
hand-made requests (what a student could send from a terminal with their own token)."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest
import requests
from nbgrader.utils import parse_utc
from support.exchange import COURSE, OTHER, CoursehubBackend, make_notebook, prepare_release

from coursehub.grading.archive import pack


@pytest.fixture
def ours(tmp_path, service, tokens) -> CoursehubBackend:
    return CoursehubBackend(tmp_path, service, tokens)


@pytest.fixture
def api(service, tokens):
    def call(user: str | None, method: str, path: str, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if user:
            headers["Authorization"] = f"token {tokens[user]}"
        return requests.request(method, service.url + "api/" + path, headers=headers, timeout=30, **kw)
    return call


def nb_tar(text: str = "x = 1", **extra: bytes) -> bytes:
    return pack({"p1.ipynb": make_notebook(text).encode(), **extra})


@pytest.fixture
def released(api, aid) -> str:
    r = api("inst", "PUT", f"courses/{COURSE}/assignments/{aid}/release", data=nb_tar())
    assert r.status_code == 201, r.text
    return aid


def test_submit_as_another_student_is_ignored(ours, released, api):
    inst, mallory = ours.actor("inst"), ours.actor("mallory")
    mallory.nbgrader("fetch_assignment", released)
    log = mallory.nbgrader("submit", released, "--student=alice")
    assert "Ignoring --student=alice" in log
    groups = inst.list(released, inbound=True)
    assert [g["student_id"] for g in groups] == ["mallory"]


def test_forged_timestamp_is_ignored(ours, released):
    inst, alice = ours.actor("inst"), ours.actor("alice")
    alice.nbgrader("fetch_assignment", released)
    (alice.home / released / "timestamp.txt").write_text("1999-01-01 00:00:00.000000 UTC")
    (alice.home / released / "submission_secret.txt").write_text("forged")
    before = time.time()
    alice.nbgrader("submit", released)
    inst.nbgrader("collect", released)
    folder = inst.home / "submitted" / "alice" / released
    stamp = parse_utc((folder / "timestamp.txt").read_text())
    assert abs(stamp.timestamp() - before) < 300
    assert (folder / "submission_secret.txt").read_text() != "forged"


def test_headers_and_query_cannot_claim_identity_or_time(api, released):
    r = api("alice", "POST", f"courses/{COURSE}/assignments/{released}/submissions?student=bob&timestamp=1999",
            data=nb_tar(), headers={"X-Student": "bob", "X-Timestamp": "1999-01-01", "Date": "Fri, 01 Jan 1999"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["student_id"] == "alice"
    assert not body["timestamp"].startswith("1999")


def test_students_see_only_their_own_submissions(api, released):
    for who in ("alice", "bob"):
        assert api(who, "POST", f"courses/{COURSE}/assignments/{released}/submissions", data=nb_tar()).ok
    mine = api("alice", "GET", "submissions", params={"course": COURSE, "assignment": released}).json()
    assert {s["student_id"] for s in mine} == {"alice"}
    r = api("alice", "GET", "submissions", params={"course": COURSE, "student": "bob"})
    assert r.status_code == 403
    r = api("alice", "GET", f"courses/{COURSE}/assignments/{released}/submissions", params={"student": "bob"})
    assert r.status_code == 403
    # Staff see everyone's.
    everyone = api("ta1", "GET", "submissions", params={"course": COURSE, "assignment": released}).json()
    assert {s["student_id"] for s in everyone} == {"alice", "bob"}


def test_students_cannot_fetch_others_feedback(api, ours, released):
    inst, bob = ours.actor("inst"), ours.actor("bob")
    bob.nbgrader("fetch_assignment", released)
    bob.nbgrader("submit", released)
    inst.nbgrader("collect", released)
    ts = (inst.home / "submitted" / "bob" / released / "timestamp.txt").read_text()
    r = api("inst", "PUT", f"courses/{COURSE}/assignments/{released}/feedback/bob", params={"timestamp": ts},
            data=pack({"p1.html": b"<p>bob's feedback</p>"}))
    assert r.status_code == 201, r.text
    r = api("alice", "GET", f"courses/{COURSE}/assignments/{released}/feedback", params={"student": "bob"})
    assert r.status_code == 403
    r = api("alice", "GET", f"courses/{COURSE}/assignments/{released}/feedback")
    assert r.ok
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert tar.getnames() == ["manifest.json"]
        assert json.load(tar.extractfile("manifest.json")) == []
    # Students cannot release feedback either.
    r = api("alice", "PUT", f"courses/{COURSE}/assignments/{released}/feedback/bob", params={"timestamp": ts},
            data=pack({"p1.html": b"<p>forged</p>"}))
    assert r.status_code == 403


def test_feedback_must_match_the_submission(api, ours, released):
    bob = ours.actor("bob")
    bob.nbgrader("fetch_assignment", released)
    bob.nbgrader("submit", released)
    sub = api("bob", "GET", "submissions", params={"course": COURSE, "assignment": released}).json()[0]
    url = f"courses/{COURSE}/assignments/{released}/feedback/bob"
    html = pack({"p1.html": b"<p>x</p>"})
    assert api("inst", "PUT", url, params={"timestamp": "2001-01-01 00:00:00.000000 UTC"}, data=html).status_code == 404
    r = api("inst", "PUT", url, params={"timestamp": sub["timestamp"]}, data=html,
            headers={"X-Submission-Secret": "not-the-secret"})
    assert r.status_code == 409
    assert api("inst", "PUT", url, params={"timestamp": sub["timestamp"]},
               data=pack({"../p1.html": b"x"})).status_code == 422


@pytest.mark.parametrize("command", ["release_assignment", "collect", "release_feedback"])
def test_students_cannot_do_staff_work(ours, released, command):
    alice = ours.actor("alice")
    prepare_release(alice, released)
    (alice.home / "feedback" / "bob" / released).mkdir(parents=True)
    (alice.home / "feedback" / "bob" / released / "p1.html").write_text("x")
    (alice.home / "feedback" / "bob" / released / "timestamp.txt").write_text("2020-01-01 00:00:00.000000 UTC")
    log = alice.nbgrader(command, released, "--force" if command == "release_assignment" else "--debug", retcode=1)
    assert "Only instructors and teaching assistants" in log


def test_students_cannot_unrelease(ours, api, released):
    r = api("alice", "DELETE", f"courses/{COURSE}/assignments/{released}/release")
    assert r.status_code == 403
    assert [a["assignment_id"] for a in ours.actor("bob").list(released)] == [released]


def test_instructor_of_one_course_cannot_act_on_another(api, aid):
    # inst teaches abc101 but is a student of xyz202; prof2 teaches xyz202 only.
    assert api("inst", "PUT", f"courses/{OTHER}/assignments/{aid}/release", data=nb_tar()).status_code == 403
    assert api("prof2", "PUT", f"courses/{COURSE}/assignments/{aid}/release", data=nb_tar()).status_code == 403
    assert api("prof2", "GET", f"courses/{COURSE}/assignments/{aid}/collection").status_code == 403
    assert api("prof2", "GET", "submissions", params={"course": COURSE}).status_code == 403
    assert api("inst", "GET", f"courses/{OTHER}/assignments/hw1/collection").status_code == 403
    r = api("prof2", "PUT", f"courses/{OTHER}/assignments/{aid}/release", data=nb_tar())
    assert r.status_code == 201


def test_members_only_and_tokens_checked(api, service, fakehub, released):
    assert api("outsider", "GET", f"courses/{COURSE}/assignments/{released}/release").status_code == 403
    assert api(None, "GET", "courses").status_code == 401
    assert requests.get(service.url + "api/courses", headers={"Authorization": "token nope"}).status_code == 401
    no_scope = fakehub.add_user("noscope", [f"course:{COURSE}:student"], scopes=["read:users"])
    r = requests.get(service.url + "api/courses", headers={"Authorization": f"token {no_scope}"})
    assert r.status_code == 403
    assert "access:services!service=grading" in r.json()["error"]
    # Cookies are not accepted by the API (no cross-site requests).
    assert requests.get(service.url + "api/courses", cookies={"jupyterhub-services": "x"}).status_code == 401


@pytest.mark.parametrize("course,assignment,status", [
    ("..", "ps1", 400), ("abc101", "..", 400), ("ABC101", "ps1", 400), ("abc101", "ps1%2F..%2F..%2Fetc", 400),
    ("abc101", ".hidden", 400), ("%2E%2E", "ps1", 400), ("nosuch", "ps1", 404), ("abc101", "a b", 400),
])
def test_path_tricks_in_ids(api, course, assignment, status):
    r = api("inst", "PUT", f"courses/{course}/assignments/{assignment}/release", data=nb_tar())
    assert r.status_code in (status, 404), r.text  # tornado may not route a decoded '/'
    if r.status_code == 400:
        assert "invalid" in r.json()["error"]


def _raw_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


NB = make_notebook().encode()


@pytest.mark.parametrize("archive,status,message", [
    (_raw_tar(_file("../evil.ipynb", NB)), 422, "not an allowed"),
    (_raw_tar(_file("/etc/evil.ipynb", NB)), 422, "must be relative"),
    (_raw_tar(_file("sub/../../evil.ipynb", NB)), 422, "not an allowed"),
    (_raw_tar(_link("p1.ipynb", "/etc/passwd", tarfile.SYMTYPE)), 422, "link"),
    (_raw_tar(_file("a.txt", b"x"), _link("p1.ipynb", "a.txt", tarfile.LNKTYPE)), 422, "link"),
    (_raw_tar(_file("p1.ipynb", b"{not json")), 422, "not valid JSON"),
    (_raw_tar(_file("p1.ipynb", b'{"nbformat": 4, "nbformat_minor": 5, "cells": "nope"}')), 422, "not a valid notebook"),
    (b"this is not a tar file at all" * 40, 422, "tar"),
])
def test_unsafe_or_invalid_uploads_are_refused(api, released, archive, status, message):
    r = api("alice", "POST", f"courses/{COURSE}/assignments/{released}/submissions", data=archive)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert api("alice", "GET", "submissions", params={"course": COURSE, "assignment": released}).json() == []


def test_size_limits_answer_413_with_the_limit(api, released):
    url = f"courses/{COURSE}/assignments/{released}/submissions"
    r = api("alice", "POST", url, data=pack({"p1.ipynb": NB, "big.bin": b"0" * 300_001}))
    assert r.status_code == 413
    assert "limit per file is 300000 bytes" in r.json()["error"]
    r = api("alice", "POST", url, data=pack({"p1.ipynb": NB, **{f"d{i}.bin": b"0" * 250_000 for i in range(3)}}))
    assert r.status_code == 413
    assert "more than the limit" in r.json()["error"]
    r = api("alice", "POST", url, data=b"0" * 2_000_000)  # a body far over the limit, not even a tar
    assert r.status_code == 413
    assert "0.6 MiB per submission" in r.json()["error"]
    r = api("alice", "POST", url, data=pack({f"f{i}.txt": b"x" for i in range(501)}))
    assert r.status_code == 413
    assert "too many files" in r.json()["error"]
    import gzip

    bomb = gzip.compress(pack({"p1.ipynb": NB, "zeros.bin": b"\0" * 290_000, "zeros2.bin": b"\0" * 290_000,
                               "zeros3.bin": b"\0" * 290_000}))
    r = api("alice", "POST", url, data=bomb)
    assert r.status_code == 413
    assert api("alice", "GET", "submissions", params={"course": COURSE, "assignment": released}).json() == []


def test_late_flag_from_course_policy_and_extensions(api, aid):
    assert api("prof2", "PUT", f"courses/{OTHER}/assignments/hw1/release", data=nb_tar(),
               params={"force": "1"}).status_code == 201
    late = api("alice", "POST", f"courses/{OTHER}/assignments/hw1/submissions", data=nb_tar()).json()
    ext = api("bob", "POST", f"courses/{OTHER}/assignments/hw1/submissions", data=nb_tar()).json()
    assert late["late"] is True and late["seconds_late"] > 0
    assert ext["late"] is False and ext["due_at"].startswith("2099-01-01")


def test_retried_upload_is_stored_once(api, released):
    url = f"courses/{COURSE}/assignments/{released}/submissions"
    body = nb_tar()  # a retry sends the same bytes (make_notebook gives new cell ids each call)
    first = api("alice", "POST", url, data=body, headers={"X-Upload-Id": "retry-1"})
    again = api("alice", "POST", url, data=body, headers={"X-Upload-Id": "retry-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["duplicate"] is True
    # The same key from another student is another submission.
    assert api("bob", "POST", url, data=nb_tar(), headers={"X-Upload-Id": "retry-1"}).status_code == 201
    assert len(api("ta1", "GET", "submissions", params={"course": COURSE, "assignment": released}).json()) == 2
