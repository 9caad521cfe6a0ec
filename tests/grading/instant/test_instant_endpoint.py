"""The instant-feedback route on a real grading service (hub auth by a FakeHub): only the
submission's own student (and staff) read it, the submit answer says when it runs, and an
assignment without `instant_feedback: true` never runs anything."""

from __future__ import annotations

import time

import pytest
import requests
from support.exchange import make_notebook, write_course
from support.fakehub import FakeHub
from support.grading import inprocess_service

from coursehub.grading.archive import pack
from coursehub.grading.instant.plugin import install
from coursehub.grading.instant.runner import InstantRunner
from coursehub.grading.instant.store import InstantStore
from coursehub.grading.service.plugins import Plugins

COURSE = "inst101"


class SandboxlessRunner(InstantRunner):
    """The real runner (pool, store, off-by-default, supersede) with the sandbox run replaced by a
    result computed from the stored files (tests/integration/autograde/test_instant.py runs the real one)."""

    def __init__(self, store: InstantStore) -> None:
        super().__init__(store, lambda cid: None, lambda slot: None)  # type: ignore[arg-type,return-value]
        self.graded: list[int] = []

    def grade(self, info: dict, files: dict[str, bytes]) -> dict:
        self.graded.append(int(info["id"]))
        ok = b"correct" in files["p1.ipynb"]
        tests = [{"notebook": "p1", "cell_id": "test-a", "passed": True, "points": 1.0, "error": ""},
                 {"notebook": "p1", "cell_id": "test-b", "passed": ok, "points": 2.0,
                  "error": "" if ok else "AssertionError: expected 3"}]
        return {"tests": tests, "passed": 1 + ok, "total": 2, "message": f"{1 + ok} of 2 visible tests pass."}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    root = tmp_path_factory.mktemp("instant")
    courses = root / "courses"
    write_course(courses, COURSE, {"instructors": ["inst"]},
                 [{"id": "quick", "instant_feedback": True}, {"id": "plain"}])
    hub = FakeHub().start()
    tokens = {name: hub.add_user(name, groups) for name, groups in {
        "inst": [f"course:{COURSE}:instructor"], "alice": [f"course:{COURSE}:student"],
        "bob": [f"course:{COURSE}:student"], "eve": ["course:other:student"]}.items()}
    store = InstantStore(root / "instant-store")
    runner = SandboxlessRunner(store)
    plugins = Plugins()
    install(plugins, store, runner)
    try:
        with inprocess_service(root / "svc", courses, hub, plugins=plugins) as service:
            for aid in ("quick", "plain"):
                r = requests.put(f"{service.url}api/courses/{COURSE}/assignments/{aid}/release",
                                 data=pack({"p1.ipynb": make_notebook().encode()}), headers=_auth(tokens["inst"]),
                                 timeout=30)
                assert r.status_code == 201, r.text
            yield service, tokens, runner
    finally:
        runner.close()
        hub.stop()


def _auth(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def _submit(service, token: str, aid: str, text: str) -> dict:
    r = requests.post(f"{service.url}api/courses/{COURSE}/assignments/{aid}/submissions",
                      data=pack({"p1.ipynb": make_notebook(text).encode()}), headers=_auth(token), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def _instant(service, token: str | None, aid: str, sid: int) -> requests.Response:
    return requests.get(f"{service.url}api/courses/{COURSE}/assignments/{aid}/submissions/{sid}/instant",
                        headers=_auth(token) if token else {}, timeout=30)


def _final(service, token: str, aid: str, sid: int) -> dict:
    for _ in range(200):
        body = _instant(service, token, aid, sid).json()
        if body["status"] != "pending":
            return body
        time.sleep(0.05)
    raise AssertionError("the instant result never arrived")


def test_the_student_gets_the_visible_results_of_their_own_submission(svc):
    service, tokens, runner = svc
    info = _submit(service, tokens["alice"], "quick", "x = 1  # wrong")
    assert info["instant_feedback"] == "pending"
    body = _final(service, tokens["alice"], "quick", info["id"])
    assert body["status"] == "done" and (body["passed"], body["total"]) == (1, 2)
    assert [t["cell_id"] for t in body["tests"] if not t["passed"]] == ["test-b"]
    assert "student_id" not in body and "course_id" not in body
    assert _final(service, tokens["inst"], "quick", info["id"])["passed"] == 1  # staff may look too


@pytest.mark.parametrize("who,status", [("bob", 404), ("eve", 403), (None, 401)])
def test_nobody_else_reads_it(svc, who, status):
    service, tokens, _ = svc
    info = _submit(service, tokens["alice"], "quick", "print('correct')")
    r = _instant(service, tokens[who] if who else None, "quick", info["id"])
    assert r.status_code == status, r.text
    assert "test-b" not in r.text and "passed" not in r.text
    # the same answer for another assignment's path or an id that does not exist (no probing)
    assert _instant(service, tokens["alice"], "plain", info["id"]).status_code == 404
    assert _instant(service, tokens["bob"], "quick", 10**9).status_code == 404


def test_off_by_default_nothing_runs(svc):
    service, tokens, runner = svc
    info = _submit(service, tokens["alice"], "plain", "print('correct')")
    assert "instant_feedback" not in info
    body = _instant(service, tokens["alice"], "plain", info["id"]).json()
    assert body["status"] == "off" and "tests" not in body
    assert info["id"] not in runner.graded
