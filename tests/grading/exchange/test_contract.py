"""The exchange contract: the same behaviours, asserted the same way, against nbgrader's default
filesystem exchange and against coursehub's grading service. Only public effects are checked:
what ExchangeList returns (what the Assignments panel renders), the student's files, and the
instructor's `submitted/<student>/<assignment>/` and feedback folders."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from nbgrader.utils import parse_utc
from support.exchange import COURSE, make_notebook, prepare_release, strip_paths, write_feedback


def edit(student, assignment: str, text: str) -> None:
    (student.home / assignment / "p1.ipynb").write_text(make_notebook(text))


def submitted_text(instructor, student: str, assignment: str) -> str:
    nb = json.loads((instructor.home / "submitted" / student / assignment / "p1.ipynb").read_text())
    return "".join(nb["cells"][1]["source"])


def test_release_list_fetch(backend, aid):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    assert alice.list(aid) == []
    inst.nbgrader("release_assignment", aid)
    # Releasing again needs --force.
    inst.nbgrader("release_assignment", aid, retcode=1)
    inst.nbgrader("release_assignment", aid, "--force")

    listed = alice.list(aid)
    assert strip_paths(listed) == [{"assignment_id": aid, "course_id": COURSE, "notebooks": [{"notebook_id": "p1"}],
                                    "status": "released"}]
    alice.nbgrader("fetch_assignment", aid)
    assert (alice.home / aid / "p1.ipynb").is_file()
    listed = alice.list(aid)
    assert listed[0]["status"] == "fetched"
    assert listed[0]["path"] == str(alice.home / aid)
    assert listed[0]["notebooks"] == [{"notebook_id": "p1", "path": str(alice.home / aid / "p1.ipynb")}]

    # A second fetch refuses to overwrite; --replace restores only missing files.
    edit(alice, aid, "mine = 42")
    alice.nbgrader("fetch_assignment", aid, retcode=1)
    (alice.home / aid / "p1.ipynb").unlink()
    alice.nbgrader("fetch_assignment", aid, "--replace")
    assert "x = 1" in (alice.home / aid / "p1.ipynb").read_text()


def test_fetch_unreleased_fails(backend, aid):
    backend.actor("alice").nbgrader("fetch_assignment", aid + "x", retcode=1)


def test_submit_resubmit_list_submitted(backend, aid):
    inst, alice, bob = backend.actor("inst"), backend.actor("alice"), backend.actor("bob")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    for s in (alice, bob):
        s.nbgrader("fetch_assignment", aid)
    edit(alice, aid, "answer = 1")
    alice.nbgrader("submit", aid)
    time.sleep(0.01)
    edit(alice, aid, "answer = 2")
    alice.nbgrader("submit", aid)
    bob.nbgrader("submit", aid)

    mine = alice.list(aid, cached=True)
    assert len(mine) == 1
    group = mine[0]
    assert {k: group[k] for k in ("course_id", "student_id", "assignment_id", "status")} == {
        "course_id": COURSE, "student_id": "alice", "assignment_id": aid, "status": "submitted"}
    subs = group["submissions"]
    assert len(subs) == 2  # resubmission keeps every submission
    assert [s["timestamp"] for s in subs] == sorted(s["timestamp"] for s in subs)
    for s in subs:
        parse_utc(s["timestamp"])
        assert (s["has_local_feedback"], s["has_exchange_feedback"], s["feedback_updated"]) == (False, False, False)
        assert s["local_feedback_path"] is None
        assert [n["notebook_id"] for n in s["notebooks"]] == ["p1"]

    inbound = inst.list(aid, inbound=True)
    assert [(g["student_id"], len(g["submissions"])) for g in inbound] == [("alice", 2), ("bob", 1)]


def test_collect_latest_and_update(backend, aid):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    alice.nbgrader("fetch_assignment", aid)
    edit(alice, aid, "answer = 'first'")
    alice.nbgrader("submit", aid)
    time.sleep(0.01)
    edit(alice, aid, "answer = 'second'")
    alice.nbgrader("submit", aid)

    inst.nbgrader("collect", aid)
    assert "second" in submitted_text(inst, "alice", aid)
    ts1 = parse_utc((inst.home / "submitted" / "alice" / aid / "timestamp.txt").read_text())
    assert abs(ts1 - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    assert (inst.home / "submitted" / "alice" / aid / "submission_secret.txt").is_file()

    time.sleep(0.01)
    edit(alice, aid, "answer = 'third'")
    alice.nbgrader("submit", aid)
    inst.nbgrader("collect", aid)  # without --update: kept
    assert "second" in submitted_text(inst, "alice", aid)
    inst.nbgrader("collect", aid, "--update")
    assert "third" in submitted_text(inst, "alice", aid)


def test_late_submission_and_collect_before_duedate(backend, aid):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    alice.nbgrader("fetch_assignment", aid)
    edit(alice, aid, "answer = 'on time'")
    alice.nbgrader("submit", aid)
    time.sleep(0.05)
    deadline = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    time.sleep(0.05)
    edit(alice, aid, "answer = 'late'")
    alice.nbgrader("submit", aid)
    inst.nbgrader("db", "assignment", "add", aid, f"--duedate={deadline.isoformat()}")

    inst.nbgrader("collect", aid, "--before-duedate")
    assert "on time" in submitted_text(inst, "alice", aid)


def test_feedback_release_fetch_update(backend, aid):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    alice.nbgrader("fetch_assignment", aid)
    alice.nbgrader("submit", aid)
    inst.nbgrader("collect", aid)

    write_feedback(inst, "alice", aid, "<html>good work</html>")
    inst.nbgrader("release_feedback", aid)
    sub = alice.list(aid, cached=True)[0]["submissions"][0]
    assert (sub["has_exchange_feedback"], sub["has_local_feedback"]) == (True, False)

    alice.nbgrader("fetch_feedback", aid)
    local = alice.home / aid / "feedback" / sub["timestamp"] / "p1.html"
    assert local.read_text() == "<html>good work</html>"
    sub = alice.list(aid, cached=True)[0]["submissions"][0]
    assert (sub["has_exchange_feedback"], sub["has_local_feedback"], sub["feedback_updated"]) == (True, True, False)
    assert sub["local_feedback_path"] == str(alice.home / aid / "feedback" / sub["timestamp"])

    # Regraded: the new feedback shows as updated until fetched again.
    write_feedback(inst, "alice", aid, "<html>even better</html>")
    inst.nbgrader("release_feedback", aid)
    sub = alice.list(aid, cached=True)[0]["submissions"][0]
    assert sub["feedback_updated"] is True
    alice.nbgrader("fetch_feedback", aid)
    assert local.read_text() == "<html>even better</html>"


def test_unrelease(backend, aid):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    assert [a["assignment_id"] for a in alice.list(aid)] == [aid]
    removed = inst.list(aid, remove=True)
    assert [a["status"] for a in removed] == ["removed"]
    assert alice.list(aid) == []
    alice.nbgrader("fetch_assignment", aid, retcode=1)
    # ... and it can be released again.
    inst.nbgrader("release_assignment", aid)
    assert [a["assignment_id"] for a in alice.list(aid)] == [aid]


@pytest.mark.parametrize("strict", [False, True])
def test_submit_missing_notebook(backend, aid, strict):
    inst, alice = backend.actor("inst"), backend.actor("alice")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    alice.nbgrader("fetch_assignment", aid)
    (alice.home / aid / "p1.ipynb").rename(alice.home / aid / "renamed.ipynb")
    if strict:
        alice.nbgrader("submit", aid, "--strict", retcode=1)
        assert alice.list(aid, cached=True) == []
    else:
        log = alice.nbgrader("submit", aid)
        assert "p1.ipynb: MISSING" in log
        assert len(alice.list(aid, cached=True)) == 1


def test_list_shapes_are_the_same_for_both_exchanges(tmp_path, service, tokens, aid):
    """What the Assignments panel renders, side by side: released, fetched, submitted (with and
    without feedback), inbound. Same keys, same values, except paths and timestamps."""
    from support.exchange import CoursehubBackend, FilesystemBackend

    views = {}
    for backend in (FilesystemBackend(tmp_path / "fs"), CoursehubBackend(tmp_path / "ours", service, tokens)):
        inst, alice = backend.actor("inst"), backend.actor("alice")
        prepare_release(inst, aid)
        inst.nbgrader("release_assignment", aid)
        seen = {"released": alice.list(aid)}
        alice.nbgrader("fetch_assignment", aid)
        seen["fetched"] = alice.list(aid)
        alice.nbgrader("submit", aid)
        time.sleep(0.01)
        alice.nbgrader("submit", aid)
        seen["cached"] = alice.list(aid, cached=True)
        seen["inbound"] = inst.list(aid, inbound=True)
        inst.nbgrader("collect", aid)
        write_feedback(inst, "alice", aid, "<html>ok</html>")
        inst.nbgrader("release_feedback", aid)
        seen["feedback ready"] = alice.list(aid, cached=True)
        alice.nbgrader("fetch_feedback", aid)
        seen["feedback fetched"] = alice.list(aid, cached=True)
        views[backend.name] = seen
    for view in views["filesystem"]:
        assert strip_paths(views["coursehub"][view]) == strip_paths(views["filesystem"][view]), view
        # The key sets are the same at every level, paths and timestamps included.
        assert _keys(views["coursehub"][view]) == _keys(views["filesystem"][view]) - {"submissions.random_string"}, view


def _keys(obj: object, prefix: str = "") -> set[str]:
    if isinstance(obj, dict):
        return {f"{prefix}{k}" for k in obj} | {x for k, v in obj.items() for x in _keys(v, f"{prefix}{k}.")}
    if isinstance(obj, list):
        return {x for v in obj for x in _keys(v, prefix)}
    return set()
