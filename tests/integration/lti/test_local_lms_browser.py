"""The local LMS page in a real browser: a student launch opens the assignment in JupyterLab.

As on a real course: the instructor first launches the assignment from the local LMS page (which
lands on the course's staff page) and releases it; the student's launch then fetches it through the exchange.
"""

from __future__ import annotations

import re

import pytest
import requests
from fakelms.client import local_lms_launch, release_assignment, staff_landing
from support.browser import browser_page, chromium_available
from support.hub import running_hub

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")


def test_student_launch_from_local_lms_opens_notebook(tmp_path):
    with running_hub(tmp_path, settings={"auth": {"dev_login": False}}) as hub:
        prof = requests.Session()
        r = local_lms_launch(prof, hub.url, course="demo-101", kind="assignment", item="ps1", role="instructor",
                             person="Grace Instructor")
        teacher = staff_landing(prof, hub.url, r.headers["Location"], "demo-101")
        assert hub.user(teacher)["groups"] == ["course:demo-101:instructor"]
        release_assignment(hub, teacher)

        with browser_page(timeout_ms=120_000) as page:
            page.goto(f"{hub.url}/hub/lms")
            row = page.locator('tr[data-kind="assignment"][data-item="ps1"]')
            with page.context.expect_page() as opened:  # launches open a new window, as LMSes do
                row.locator('button[data-launch="student"]').click()
            lab = opened.value
            lab.wait_for_url(re.compile(r"/user/local-lms-[a-z0-9]+/lab/tree/demo-101/ps1/part1\.ipynb"),
                             timeout=180_000)
            panel = lab.locator(".jp-NotebookPanel:visible").first
            panel.wait_for(timeout=120_000)
            lab.locator(".lm-TabBar-tabLabel:visible", has_text="part1.ipynb").first.wait_for(timeout=60_000)
            # The student version of the notebook is open: a code cell to fill in, no solution.
            panel.locator(".jp-Cell", has_text="def squares(n)").first.wait_for(timeout=60_000)
            assert "YOUR CODE HERE" in panel.inner_text() and "BEGIN SOLUTION" not in panel.inner_text()
            # Opened as fetched: not marked modified (no unsaved-changes dot, nothing to save on close).
            lab.wait_for_timeout(2000)  # Lab marks a notebook it had to upgrade or fill in a moment after opening
            tab = lab.locator(".lm-TabBar-tab:visible", has_text="part1.ipynb").first
            assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), tab.get_attribute("class")
            # A managed platform: no "official Jupyter news?" question (JupyterLab's announcements plugin).
            assert lab.locator(".jp-Notification-Toast, .Toastify__toast", has_text="news").count() == 0
            student = re.search(r"/user/([^/]+)/", lab.url)[1]

        # It came through the exchange (nbgrader fetch_assignment as the student), into the course folder.
        admin = {"Authorization": f"token {hub.token}"}
        listed = requests.get(f"{hub.url}/user/{student}/assignments", params={"course_id": "demo-101"},
                              headers=admin, timeout=60).json()["value"]
        assert [(a["assignment_id"], a["status"]) for a in listed] == [("ps1", "fetched")]
        notebook = (hub.state_dir / "homes" / student / "demo-101" / "ps1" / "part1.ipynb").read_text()
        assert "BEGIN SOLUTION" not in notebook and "YOUR CODE HERE" in notebook
        assert hub.user(student)["groups"] == ["course:demo-101:student"]
        assert "LTI audit: outcome=accepted reason=ok platform=local-lms" in hub.log()

        # The local LMS page is not the development login: /hub/login has no password form.
        login = requests.get(f"{hub.url}/hub/login", timeout=10).text
        assert 'name="password"' not in login and "local LMS page" in login
        hub.stop_server(student)
        hub.stop_server(teacher)
