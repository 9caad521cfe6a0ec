"""The after-collect hook (for autograde jobs) and extra handlers (for the dashboard)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from support.exchange import COURSE, CoursehubBackend, prepare_release
from support.grading import running_service
from support.net import wait_until


@pytest.fixture(scope="module")
def hooked(tmp_path_factory, courses_dir, fakehub, tokens):
    tmp = tmp_path_factory.mktemp("hooked")
    log = tmp / "hook.jsonl"
    tests_dir = str(Path(__file__).resolve().parents[2])
    env = {"COURSEHUB_GRADING_PLUGINS": "support.hookplugin", "HOOK_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")])}
    with running_service(tmp, courses_dir, fakehub, env=env) as svc:
        yield svc, log


def test_after_collect_hook_gets_the_collected_submissions(tmp_path, hooked, tokens, aid):
    svc, log = hooked
    ours = CoursehubBackend(tmp_path, svc, tokens)
    inst = ours.actor("inst")
    prepare_release(inst, aid)
    inst.nbgrader("release_assignment", aid)
    for who in ("alice", "bob"):
        s = ours.actor(who)
        s.nbgrader("fetch_assignment", aid)
        s.nbgrader("submit", aid)
    assert not log.exists() or aid not in log.read_text()
    inst.nbgrader("collect", aid)

    def events() -> list[dict]:
        if not log.exists():
            return []
        return [e for e in map(json.loads, log.read_text().splitlines()) if e["assignment"] == aid]

    got = wait_until(lambda: len(events()) == 2 and events(), timeout=30, what="after-collect hook")
    assert {e["student"] for e in got} == {"alice", "bob"}
    assert all(e["files"] == ["p1.ipynb"] and e["actor"] == "inst" and e["course"] == COURSE for e in got)


def test_students_do_not_trigger_hooks_or_collect(hooked, tokens, aid):
    svc, log = hooked
    r = requests.post(f"{svc.url}api/courses/{COURSE}/assignments/{aid}/collection", json={"ids": [1]},
                      headers={"Authorization": f"token {tokens['alice']}"}, timeout=30)
    assert r.status_code == 403
