"""The whole grade round trip on the local platform: people launch from the local LMS page (which
announces its AGS and NRPS services), a student's submission is autograded by the hub's own worker,
then in chromium the instructor launches from the local LMS page, presses the dashboard's "send
grades to the LMS" (the score goes through the local LMS's token endpoint and AGS), reads it on the
local LMS gradebook page (both LMS pages checked with axe-core) and presses "update roster" (the
local NRPS roster). The student's steps that are not about the LMS stay API-driven."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from fakelms.client import local_lms_launch
from support.browser import axe_problems, browser_page, chromium_available, screenshot
from support.hub import running_hub
from support.net import wait_until
from support.venv import venv_env

from coursehub.grading.archive import pack
from coursehub.paths import SOURCE_ROOT

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")

COURSE, ASSIGNMENT = "demo-101", "ps1"
IDENTITIES = "select display_name, username from coursehub_lti_identities"


def courses_in_platform_environment(root: Path) -> Path:
    """demo-101 graded in the platform's environment (building its own is tested elsewhere)."""
    dest = root / "courses"
    shutil.copytree(SOURCE_ROOT / "courses", dest)
    shutil.rmtree(dest / COURSE / "environment", ignore_errors=True)
    spec = yaml.safe_load((dest / COURSE / "course.yaml").read_text())
    spec["staff"] = {}
    (dest / COURSE / "course.yaml").write_text(yaml.safe_dump(spec))
    return dest


def launch(hub, person: str, role: str) -> str:  # noqa: ANN001
    """A launch from the local LMS page; the hub username it gave `person`."""
    import sqlite3

    r = local_lms_launch(requests.Session(), hub.url, course=COURSE, kind="course", item="", role=role, person=person)
    assert r.status_code == 302, r.text[:500]
    with sqlite3.connect(hub.state_dir / "lti.sqlite") as db:
        return dict(db.execute(IDENTITIES).fetchall())[person]


def api(hub, token: str, method: str, path: str, **kw) -> requests.Response:  # noqa: ANN001
    r = requests.request(method, f"{hub.url}/services/grading/{path}", timeout=120, allow_redirects=False,
                         headers={"Authorization": f"token {token}", **kw.pop("headers", {})}, **kw)
    assert r.status_code < 400, f"{method} {path}: HTTP {r.status_code} {r.text[:500]}"
    return r


def test_grade_goes_round_trip_through_the_local_lms(tmp_path):
    # The sync timer (every 30 s by default) would send the grade itself if grading and the
    # browser's steps take longer than that on a loaded machine; here only the button sends.
    settings = {"courses_dir": str(courses_in_platform_environment(tmp_path)),
                "auth": {"dev_login": False, "lti": {"local_lms": True}},
                "grading": {"lms": {"send_interval_seconds": 3600}}}
    with running_hub(tmp_path, settings=settings) as hub:
        prof = launch(hub, "Ines Teacher", "instructor")
        sam = launch(hub, "Sam Student", "student")
        prof_token, sam_token = hub.user_token(prof), hub.user_token(sam)

        # the instructor generates and releases ps1 (what the formgrader's buttons do)
        course_dir = hub.state_dir / "course-dirs" / COURSE
        wait_until(lambda: (course_dir / "source" / ASSIGNMENT).is_dir(), timeout=60, what="course directory")
        env = venv_env()
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--log-level=ERROR"],
                       cwd=course_dir, env=env, check=True, capture_output=True)
        release = {p.name: p.read_bytes() for p in sorted((course_dir / "release" / ASSIGNMENT).glob("*.ipynb"))}
        api(hub, prof_token, "PUT", f"api/courses/{COURSE}/assignments/{ASSIGNMENT}/release", data=pack(release),
            headers={"Content-Type": "application/x-tar"})

        # the student hands in the worked solutions; the instructor collects; the worker grades
        answers = {p.name: p.read_bytes() for p in sorted((course_dir / "source" / ASSIGNMENT).glob("*.ipynb"))}
        api(hub, sam_token, "POST", f"api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", data=pack(answers),
            headers={"Content-Type": "application/x-tar",
                     "X-Upload-Id": hashlib.sha256(sam_token.encode()).hexdigest()[:32]})
        ids = [r["id"] for r in api(hub, prof_token, "GET",
                                    f"api/courses/{COURSE}/assignments/{ASSIGNMENT}/collection").json()]
        api(hub, prof_token, "POST", f"api/courses/{COURSE}/assignments/{ASSIGNMENT}/collection", json={"ids": ids})

        def graded() -> float | None:
            r = requests.get(f"{hub.url}/services/grading/dashboard/{COURSE}/export?format=csv&long=1", timeout=60,
                             headers={"Authorization": f"token {prof_token}"})
            if r.status_code != 200:
                return None
            long = pd.read_csv(io.BytesIO(r.content), dtype={"student_id": str})
            mine = long[(long["student_id"] == sam) & (long["assignment"] == ASSIGNMENT) & long["submitted"]]
            return float(mine["score"].iloc[0]) if len(mine) else None

        wait_until(lambda: graded() is not None, timeout=300, interval=2, what="autograde of the submission")
        score = graded()
        assert score > 0

        # in chromium, as a person clicks: the instructor launches from the local LMS page, opens the grade
        # dashboard from the staff page, sends the grades (token, line item and score on the local LMS)
        # and reads the score on the local LMS gradebook page
        with browser_page(timeout_ms=120_000) as page:
            assert page.goto(f"{hub.url}/hub/lms").status == 200
            assert axe_problems(page) == []  # the local LMS page itself
            form = page.locator(f'tr[data-kind="assignment"][data-item="{ASSIGNMENT}"] form') \
                .filter(has=page.locator('button[data-launch="instructor"]'))
            form.locator('input[name="person"]').fill("Ines Teacher")
            with page.context.expect_page() as opened:  # launches open a new window, as LMSes do
                form.locator("button").click()
            staff = opened.value  # the instructor's launch starts their server, then lands on the staff page
            staff.wait_for_url(f"{hub.url}/services/grading/course/{COURSE}/staff", timeout=240_000)
            assert staff.locator("#open-lab").get_attribute("href") == f"/user/{prof}/lab"
            staff.get_by_role("link", name="Grade dashboard").click()
            staff.get_by_role("button", name="Send changed grades to the LMS now").click()
            staff.wait_for_url(lambda url: "msg=" in url)
            said = staff.locator("p[role=status]").inner_text()
            assert "sent now: 1" in said, said

            assert staff.goto(f"{hub.url}/hub/lms/gradebook").status == 200
            book = staff.locator(f'section[data-course="{COURSE}"] table.gradebook')
            column = book.locator(f'thead th[data-lineitem="{ASSIGNMENT}"]')
            assert column.inner_text().startswith("Problem set 1 (of "), column.inner_text()
            sam_row = book.locator("tbody tr", has=staff.locator('th[scope="row"]', has_text="Sam Student"))
            assert sam_row.count() == 1, book.inner_html()[:3000]
            at = book.locator("thead th").evaluate_all(f"ths => ths.findIndex(t => t.dataset.lineitem === '{ASSIGNMENT}')")
            cell = sam_row.locator("td.score").nth(at - 1).inner_text()  # the first column names the person
            assert cell.startswith(f"{score:g} / "), sam_row.inner_text()
            assert axe_problems(staff) == []
            screenshot(staff, tmp_path, "operators", "local-lms-gradebook.png")

            # "update roster": the local LMS's NRPS roster (everyone who launched)
            assert staff.goto(f"{hub.url}/services/grading/dashboard/{COURSE}").status == 200
            with staff.expect_navigation():
                staff.get_by_role("button", name="Update the roster from the LMS").click()
            said = staff.locator("p[role=status]").inner_text()
            assert said.startswith("Roster updated: 2 members"), said

        # its services answer only to a token from its token endpoint, for its own courses
        items = f"{hub.url}/hub/lms/ags/demo-101-context/lineitems"
        forged = {"userId": "local-sam-student", "scoreGiven": 0, "scoreMaximum": 1,
                  "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                  "timestamp": "2099-01-01T00:00:00+00:00"}
        for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": f"token {prof_token}"}):
            r = requests.post(f"{items}/1/scores", json=forged, timeout=30,
                              headers={"Content-Type": "application/vnd.ims.lis.v1.score+json", **headers})
            assert r.status_code == 401, (headers, r.status_code, r.text[:300])
        assert requests.get(f"{hub.url}/hub/lms/nrps/demo-101-context/memberships", timeout=30).status_code == 401
        assert requests.get(f"{hub.url}/hub/lms/ags/other-context/lineitems", timeout=30).status_code == 404
        assert f">{score:g} / " in requests.get(f"{hub.url}/hub/lms/gradebook", timeout=60).text  # unchanged

