"""Submissions on the hub's earlier word (issue 17): a token the hub confirmed before authenticates a
submission without waiting for the hub, and only a submission; it is re-checked in the background,
and a token the hub no longer knows is refused from then on. Attacks: revoked, forged, other
endpoints, a student removed from the course, another student's token."""

from __future__ import annotations

import json

import pytest
import requests
from support.exchange import COURSE, make_notebook
from support.fakehub import FakeHub
from support.grading import inprocess_service
from support.net import wait_until

from coursehub.grading.archive import pack
from coursehub.grading.service.auth import TOKEN_TTL

NB = make_notebook().encode()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub():
    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture
def people(hub):
    return {
        "inst": hub.add_user("inst", [f"course:{COURSE}:instructor"]),
        "ann": hub.add_user("ann", [f"course:{COURSE}:student"]),
        "bob": hub.add_user("bob", [f"course:{COURSE}:student"]),
    }


@pytest.fixture
def svc(tmp_path, courses_dir, hub, people):
    with inprocess_service(tmp_path, courses_dir, hub) as s:
        auth = s.app.settings["hub_auth"]
        auth.clock = Clock(1000.0)
        s.ctx.roles.clock = Clock(1000.0)
        yield s


def headers(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def submit(svc, token: str, aid: str = "ps1") -> requests.Response:
    return requests.post(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/submissions",
                         data=pack({"p1.ipynb": NB}), headers=headers(token), timeout=30)


def listing(svc, token: str) -> requests.Response:
    return requests.get(f"{svc.url}api/releases", params={"course": COURSE}, headers=headers(token), timeout=30)


def later(svc, seconds: float) -> None:
    """Move the service's clocks on: its answers about tokens and course roles are older."""
    auth = svc.app.settings["hub_auth"]
    auth.clock.now += seconds
    svc.ctx.roles.clock.now += seconds
    for key in auth.cache.timestamps:  # HubAuth's own cache of fresh answers keeps real time
        auth.cache.timestamps[key] -= seconds


@pytest.fixture
def released(svc, people):
    r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/ps1/release", data=pack({"p1.ipynb": NB}),
                     headers=headers(people["inst"]), timeout=30)
    assert r.status_code == 201, r.text


def test_a_known_token_submits_while_the_hub_cannot_answer_and_a_revoked_one_is_refused_after_its_recheck(
        svc, hub, people, released):
    auth = svc.app.settings["hub_auth"]
    assert listing(svc, people["ann"]).status_code == 200  # the server's first contact (the launch's fetch)
    later(svc, TOKEN_TTL + 1)
    hub.tokens_down = True  # the hub cannot say who owns a token (restarting)
    assert submit(svc, people["ann"]).status_code == 201  # taken on the hub's earlier word
    assert listing(svc, people["ann"]).status_code != 200  # anything else needs a fresh answer
    assert submit(svc, people["bob"]).status_code != 201  # a token the service never saw: no earlier word
    wait_until(lambda: auth.rechecks >= 1, timeout=10)  # re-checked behind the submission: no answer
    assert submit(svc, people["ann"]).status_code == 201  # so the earlier word still stands

    hub.tokens_down = False
    del hub.tokens[people["ann"]]  # revoked at the hub
    asked = hub.token_requests
    wait_until(lambda: auth.rechecks >= 2 and hub.token_requests > asked, timeout=10)
    wait_until(lambda: not auth._pending, timeout=10)
    # Forgotten: every request with the token, a submission included, is refused from now on.
    r = submit(svc, people["ann"])
    assert r.status_code == 401 and "not accepted" in r.text
    assert listing(svc, people["ann"]).status_code == 401
    with svc.core.sessions() as s:
        from sqlalchemy import func, select

        from coursehub.grading.models import Submission

        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.student_id == "ann")) == 2


def test_only_submissions_take_the_earlier_word(svc, hub, people, released):
    """A revoked token the service still knows is refused at once by every other endpoint: listing,
    fetching, its own submissions, and anything staff do (release, collect)."""
    auth = svc.app.settings["hub_auth"]
    auth.recheck_rate = 0.001
    for who in ("ann", "inst"):
        assert listing(svc, people[who]).status_code == 200
    later(svc, TOKEN_TTL + 1)
    del hub.tokens[people["ann"]]
    del hub.tokens[people["inst"]]
    base = f"{svc.url}api/courses/{COURSE}/assignments/ps1"
    refused = [
        requests.get(f"{svc.url}api/releases", headers=headers(people["ann"]), timeout=30),
        requests.get(f"{base}/release", headers=headers(people["ann"]), timeout=30),
        requests.get(f"{base}/submissions", headers=headers(people["ann"]), timeout=30),
        requests.put(f"{base}/release", data=pack({"p1.ipynb": NB}), headers=headers(people["inst"]), timeout=30),
        requests.delete(f"{base}/release", headers=headers(people["inst"]), timeout=30),
        requests.get(f"{base}/collection", headers=headers(people["inst"]), timeout=30),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)


def test_forged_and_unknown_tokens_are_asked_about_and_refused(svc, hub, people, released):
    assert listing(svc, people["ann"]).status_code == 200
    later(svc, TOKEN_TTL + 1)
    token = people["ann"]
    for forged in (token[:-1], token + "0", token.upper() if token.upper() != token else token + "A", "x" * 32, ""):
        r = requests.post(f"{svc.url}api/courses/{COURSE}/assignments/ps1/submissions", data=pack({"p1.ipynb": NB}),
                          headers=headers(forged) if forged else {}, timeout=30)
        assert r.status_code == 401, forged


def test_a_known_token_is_still_bound_to_its_own_user_and_their_course_role(svc, hub, people, released):
    """The earlier word says who; what they may do still comes from the course groups (re-read
    after ROLES_TTL): bob's known token submits as bob, and once bob left the course, not at all."""
    for who in ("ann", "bob"):
        assert listing(svc, people[who]).status_code == 200
    later(svc, TOKEN_TTL + 1)
    r = submit(svc, people["bob"])
    assert r.status_code == 201 and r.json()["student_id"] == "bob"
    hub.groups["bob"] = []  # bob dropped the course
    later(svc, TOKEN_TTL + 1)
    r = submit(svc, people["bob"])
    assert r.status_code == 403, r.text
    r = submit(svc, people["ann"])
    assert r.status_code == 201 and r.json()["student_id"] == "ann"
    assert json.loads(requests.get(f"{svc.url}api/courses/{COURSE}/assignments/ps1/submissions",
                                   headers=headers(people["ann"]), timeout=30).text)
