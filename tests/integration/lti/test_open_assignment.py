"""An assignment link opens the released assignment: instructor releases, the student's launch
fetches it through the exchange into their course server and opens the notebook (JupyterHub 6;
the grading service's nbgrader tooling is not installed in the JupyterHub 5.5 test environment)."""

from __future__ import annotations

import time

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import PageInstead, follow_to_server, launch, release_assignment, staff_landing
from fakelms.server import ROLE
from support.net import wait_until

from .conftest import username_for
from .test_launches import new_sub


def test_released_assignment_opens_through_the_exchange(lti_env):
    hub, lms = lti_env
    student_sub, teacher_sub = new_sub(), new_sub()
    student, teacher = username_for(lms, student_sub), username_for(lms, teacher_sub)
    stud, prof = requests.Session(), requests.Session()

    r = launch(stud, hub.url, lms, LaunchSpec(sub=student_sub, custom={"assignment": "ps1"}))
    with pytest.raises(PageInstead):  # not released yet
        follow_to_server(stud, hub.url, r.headers["Location"])

    # The instructor's launch of the same link opens the course's staff page, their server started;
    # they release ps1 in the formgrader.
    r = launch(prof, hub.url, lms, LaunchSpec(sub=teacher_sub, roles=[ROLE["instructor"]], custom={"assignment": "ps1"}))
    assert staff_landing(prof, hub.url, r.headers["Location"], "demo-101") == teacher
    assert prof.get(f"{hub.url}/user/{teacher}/formgrader", timeout=60).status_code == 200
    release_assignment(hub, teacher)

    # Now the student's launch fetches it through the exchange (as the student) and opens it.
    r = launch(stud, hub.url, lms, LaunchSpec(sub=student_sub, custom={"assignment": "ps1"}))
    lab = follow_to_server(stud, hub.url, r.headers["Location"])
    assert lab == f"{hub.url}/user/{student}/lab/tree/demo-101/ps1/part1.ipynb"
    admin = {"Authorization": f"token {hub.token}"}
    # The hub starts the notebook's kernel while Lab loads. Lab's own request for the notebook's
    # session (sent here at once, while that kernel is still starting) joins it: one kernel.
    notebook = "demo-101/ps1/part1.ipynb"
    mine = requests.post(f"{hub.url}/user/{student}/api/sessions", headers=admin, timeout=120,
                         json={"path": notebook, "name": "part1.ipynb", "type": "notebook"})
    assert mine.status_code == 201, mine.text
    sessions = _settled_sessions(hub, student, admin)
    assert [(x["path"], x["kernel"]["id"]) for x in sessions] == [(notebook, mine.json()["kernel"]["id"])]
    kernels = requests.get(f"{hub.url}/user/{student}/api/kernels", headers=admin, timeout=30).json()
    assert [k["id"] for k in kernels] == [mine.json()["kernel"]["id"]]
    contents = requests.get(f"{hub.url}/user/{student}/api/contents/demo-101/ps1/part1.ipynb", timeout=30,
                            headers=admin)
    assert contents.status_code == 200
    text = str(contents.json()["content"])
    assert "YOUR CODE HERE" in text and "BEGIN SOLUTION" not in text
    # Lab asks for the export formats when the notebook opens: coursehub's extension answers them,
    # worked out once; like Jupyter Server's own, only for someone allowed on this server.
    formats = [requests.get(f"{hub.url}/user/{student}/api/nbconvert", headers=admin, timeout=60) for _ in range(2)]
    assert [f.status_code for f in formats] == [200, 200] and formats[0].json() == formats[1].json()
    assert {"html", "python", "markdown"} <= set(formats[0].json())
    assert "coursehub: /api/nbconvert worked out once per server" in hub.log()
    assert requests.get(f"{hub.url}/user/{student}/api/nbconvert", timeout=60,
                        allow_redirects=False).status_code in (302, 403)
    listed = requests.get(f"{hub.url}/user/{student}/assignments", params={"course_id": "demo-101"},
                          headers=admin, timeout=60).json()["value"]
    assert [(a["assignment_id"], a["status"]) for a in listed] == [("ps1", "fetched")]

    # Opening the link again leaves the student's copy alone (their work is never overwritten), and
    # the notebook's kernel is started again by the hub alone (the session was closed meanwhile).
    path = hub.state_dir / "homes" / student / "demo-101" / "ps1" / "part1.ipynb"
    path.write_text(path.read_text().replace("YOUR CODE HERE", "MY WORK"))
    assert requests.delete(f"{hub.url}/user/{student}/api/sessions/{mine.json()['id']}", headers=admin,
                           timeout=60).status_code == 204
    r = launch(stud, hub.url, lms, LaunchSpec(sub=student_sub, custom={"assignment": "ps1"}))
    assert follow_to_server(stud, hub.url, r.headers["Location"]) == lab
    assert "MY WORK" in path.read_text()
    wait_until(lambda: [x["path"] for x in _sessions(hub, student, admin)] == [notebook], timeout=120,
               what="the hub's pre-started session of the notebook")
    hub.stop_server(student)
    hub.stop_server(teacher)


def _sessions(hub, user: str, headers: dict) -> list[dict]:
    return requests.get(f"{hub.url}/user/{user}/api/sessions", headers=headers, timeout=30).json()


def _settled_sessions(hub, user: str, headers: dict, quiet: float = 3.0) -> list[dict]:
    """The server's sessions once they stopped changing for `quiet` seconds (a pre-start in flight
    has ended)."""
    last, since = None, time.monotonic()
    deadline = since + 120
    while time.monotonic() < deadline:
        now = sorted((x["id"], x["kernel"]["id"]) for x in _sessions(hub, user, headers))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return _sessions(hub, user, headers)
        time.sleep(0.2)
    raise AssertionError(f"the sessions of {user} kept changing")
