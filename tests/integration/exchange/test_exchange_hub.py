"""The exchange through the real hub and real user servers (one hub start-up).

An instructor releases the demo assignment from their server (the formgrader's API, which runs
stock nbgrader with our plugin), a student fetches it in the Assignments panel's API, edits and
submits from their server, and the instructor collects into the course's shared directory.
"""

from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace

import nbformat
import requests
from nbgrader.api import Gradebook
from support.courses import courses_with_staff
from support.hub import running_hub
from support.net import wait_until

from coursehub.grading import envparity
from coursehub.grading.exchange.launch import fetch_for_launch


def test_release_fetch_submit_collect_through_the_hub(tmp_path):
    # graded in the platform's environment: building demo-101's own is tested in tests/integration/environments
    courses = courses_with_staff(tmp_path, ["prof"], ["tara"], platform_environment=True)
    with running_hub(tmp_path, settings={"courses_dir": str(courses)}) as hub:
        hub.login("prof")
        browser = hub.login("stud")
        # Browsers sign in to the service with the hub's OAuth (no extra login).
        page = browser.get(f"{hub.url}/services/grading/", timeout=60)
        assert page.status_code == 200, page.text
        assert "Signed in as stud" in page.text and "demo-101: student" in page.text
        assert "course:demo-101:instructor" in hub.user("prof")["groups"]

        # The hub started the grading service; it answers through the proxy, and it holds no admin role.
        assert requests.get(f"{hub.url}/services/grading/health", timeout=10).json() == {"ok": True}
        roles = hub.api("GET", "/services/grading").json()["roles"]
        assert "admin" not in roles

        # A student's token (any server token has the same scope) can call the service; it knows their role.
        r = requests.get(f"{hub.url}/services/grading/api/courses", timeout=10,
                         headers={"Authorization": f"token {hub.user_token('stud')}"})
        assert r.status_code == 200, r.text
        assert r.json()["courses"][0]["roles"] == ["student"]

        prof_url = hub.start_server("prof", course="demo-101")
        stud_url = hub.start_server("stud", course="demo-101")
        prof = {"Authorization": f"token {hub.user_token('prof')}"}
        stud = {"Authorization": f"token {hub.user_token('stud')}"}

        # Instructor: generate and release ps1 with the formgrader (stock nbgrader + our plugin).
        for step in ("assign", "release"):
            r = requests.post(f"{prof_url}formgrader/api/assignment/ps1/{step}", headers=prof, timeout=120)
            assert r.status_code == 200, r.text
            assert r.json()["success"], r.json()
        # The course directory is the shared one, linked into the instructor's home.
        mount = hub.state_dir / "homes" / "prof" / "courses" / "demo-101"
        assert mount.is_symlink()
        assert mount.resolve() == (hub.state_dir / "course-dirs" / "demo-101").resolve()

        # Student: the Assignments panel lists, fetches, then the student edits and submits.
        listed = requests.get(f"{stud_url}assignments", params={"course_id": "demo-101"}, headers=stud,
                              timeout=60).json()
        assert listed["success"], listed
        assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [("ps1", "released")]
        # The fetch goes through the LTI launch seam, which drives the panel's fetch endpoint in the
        # student's server with a short-lived token for that server only.
        launch = SimpleNamespace(
            username="stud", course=SimpleNamespace(id="demo-101"), assignment="ps1", server_url=stud_url,
            token=hub.user_token("stud", scopes=["access:servers!user=stud"]), home_dir=None)
        assert asyncio.run(fetch_for_launch(launch)) == "demo-101/ps1"
        assert asyncio.run(fetch_for_launch(launch)) == "demo-101/ps1"  # already there: left alone
        listed = requests.get(f"{stud_url}assignments", params={"course_id": "demo-101"}, headers=stud,
                              timeout=60).json()
        assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [("ps1", "fetched")]
        nb_path = "demo-101/ps1/part1.ipynb"
        model = requests.get(f"{stud_url}api/contents/{nb_path}", headers=stud, timeout=30).json()
        nb = nbformat.from_dict(model["content"])
        nb.cells.append(nbformat.v4.new_markdown_cell("my answer: 42"))
        r = requests.put(f"{stud_url}api/contents/{nb_path}", headers=stud, timeout=30,
                         json={"type": "notebook", "format": "json", "content": nb})
        assert r.status_code == 200, r.text
        r = requests.post(f"{stud_url}assignments/submit", data={"course_id": "demo-101", "assignment_id": "ps1"},
                          headers=stud, timeout=60)
        assert r.json()["success"], r.json()
        listed = requests.get(f"{stud_url}assignments", params={"course_id": "demo-101"}, headers=stud,
                              timeout=60).json()["value"]
        submitted = [a for a in listed if a["status"] == "submitted"]
        assert submitted and submitted[0]["student_id"] == "stud"
        assert len(submitted[0]["submissions"]) == 1

        # Instructor collects into the shared course directory.
        r = requests.post(f"{prof_url}formgrader/api/assignment/ps1/collect", headers=prof, timeout=120)
        assert r.json()["success"], r.json()
        collected = hub.state_dir / "course-dirs" / "demo-101" / "submitted" / "stud" / "ps1"
        text = json.loads((collected / "part1.ipynb").read_text())
        assert any("my answer: 42" in "".join(c["source"]) for c in text["cells"])
        # the panel labels the submission with the service's time to the second (nbgrader's has microseconds)
        from coursehub.grading.exchange.lateness import shown_time

        stamp = (collected / "timestamp.txt").read_text()
        assert "." in stamp and submitted[0]["submissions"][0]["timestamp"] == shown_time(stamp)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown_time(stamp))

        # The student cannot collect from their own server (no staff role, no course directory).
        r = requests.get(f"{hub.url}/services/grading/api/courses/demo-101/assignments/ps1/collection",
                         headers=stud, timeout=10)
        assert r.status_code == 403

        # The collect queued an autograde job; the hub's autograde worker grades it in the sandbox
        # into the course's nbgrader gradebook (the student left the answers empty: zero points).
        course_dir = hub.state_dir / "course-dirs" / "demo-101"
        wait_until(lambda: (course_dir / "autograded" / "stud" / "ps1" / "part1.ipynb").is_file(),
                   timeout=180, what="autograde of the collected submission")
        with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id="demo-101") as gb:
            sub = gb.find_submission("ps1", "stud")
            assert sub.max_score == 10 and sub.score == 0
        # Environment parity: the student's server (the platform's environment here) reported it with
        # the submit, the collect left it, and the worker recorded what it graded in.
        assert envparity.read_record(collected) == envparity.Recorded("default", "python3")
        assert envparity.graded_environment(course_dir / "autograded" / "stud" / "ps1") == "default"
        hub.stop_server("stud")
        hub.stop_server("prof")
