"""The course dashboard through the real hub, in headless chromium: an instructor sees the counts and
plots, a student gets 403; a TA grades a manual answer in the formgrader and the grade shows in the
gradebook and in the dashboard's export. One hub start-up for the module."""

from __future__ import annotations

import io
import sqlite3

import pandas as pd
import pytest
import requests
from support.browser import axe_problems, browser_login, browser_page, chromium_available, screenshot
from support.courses import courses_with_staff
from support.hub import running_hub
from support.synthetic_gradebook import StudentRow, build_gradebook

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")]

COURSE = "demo-101"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dashhub")
    courses = courses_with_staff(tmp_path, ["prof"], ["tara"])
    with running_hub(tmp_path, settings={"courses_dir": str(courses)}) as hub:
        gradebook = hub.state_dir / "course-dirs" / COURSE / "gradebook.db"
        gradebook.parent.mkdir(parents=True, exist_ok=True)
        build_gradebook(f"sqlite:///{gradebook}", students=[StudentRow(f"s{i}") for i in range(5)],
                        assignment_names=["ps1"], submit_rate=1.0, manual_cells=1, seed=11)
        hub.gradebook = gradebook
        hub.dashboard = f"{hub.url}/services/grading/dashboard/{COURSE}/"
        yield hub


def test_instructor_sees_counts_and_plots(hub):
    with browser_page(timeout_ms=120_000) as page:
        browser_login(page, hub, "prof")
        resp = page.goto(hub.dashboard)
        assert resp.status == 200, page.content()[:2000]
        row = page.locator("tr[data-assignment='ps1']")
        assert row.locator("td.submitted").inner_text() == "5"
        graded = int(row.locator("td.graded").inner_text())
        manual = int(row.locator("td.manual").inner_text())
        assert graded + manual == 5
        plots = page.locator(".plots-for[data-assignment='ps1']")
        assert plots.locator("figure.distribution svg").count() == 1
        assert plots.locator("figure.timeline svg").count() == 1
        assert page.locator("a", has_text="Open the formgrader").get_attribute("target") == "_blank"
        # a POST button (with the hub's _xsrf token): queue the gradebook's grades for the LMS
        page.locator("button", has_text="Send changed grades to the LMS now").click()
        page.wait_for_url(lambda url: "msg=" in url)
        assert "5 changed grade(s) queued" in page.locator("p[role=status]").inner_text()


def test_dashboard_on_a_phone_sorts_filters_and_passes_axe(hub, tmp_path):
    """390 px wide: the page never scrolls sideways (the wide students table scrolls in its own box),
    the table sorts and filters in place, and axe-core finds no serious or critical violation."""
    with browser_page(timeout_ms=120_000) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        browser_login(page, hub, "prof")
        assert page.goto(hub.dashboard).status == 200
        assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth"), \
            page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        rows = page.locator("#student-table tbody tr[data-student]")
        assert rows.count() == 5
        page.locator("#student-table th a[data-sort='ps1']").click()  # ascending by score, then descending
        page.locator("#student-table th a[data-sort='ps1']").click()
        values = [float(v or "-inf") for v in page.locator("#student-table tbody tr[data-student] td[data-assignment='ps1']")
                  .evaluate_all("cells => cells.map(c => c.dataset.value)")]
        assert values == sorted(values, reverse=True) and "msg=" not in page.url  # sorted in place
        page.get_by_label("Find a student").fill("s3")
        assert page.locator("#student-table tbody tr[data-student]:visible").count() == 1
        assert "1 of 5 students shown" in page.locator("#shown").inner_text()
        page.get_by_label("Find a student").fill("")
        page.evaluate("() => { document.querySelector('.scroll').scrollLeft = 0; window.scrollTo(0, 0); }")
        screenshot(page, tmp_path, "instructors", "dashboard-phone.png")  # the picture in docs/instructors/grades.md
        assert axe_problems(page) == []


def test_student_gets_403(hub):
    with browser_page(timeout_ms=120_000) as page:
        browser_login(page, hub, "stud")
        resp = page.goto(hub.dashboard)
        assert resp.status == 403
        assert "Problem set" not in page.content()


def test_ta_grades_a_manual_answer_in_the_formgrader(hub):
    """The formgrader's own API in the TA's server (what its page calls when a grade is saved)."""
    with sqlite3.connect(hub.gradebook) as db:
        grade_id, student = db.execute(
            "SELECT g.id, sa.student_id FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN grade_cells gc ON gc.id = g.cell_id "
            "WHERE gc.cell_type = 'markdown' ORDER BY sa.student_id LIMIT 1").fetchone()
    hub.login("tara")
    tara_url = hub.start_server("tara", course=COURSE)
    try:
        tara = {"Authorization": f"token {hub.user_token('tara')}"}
        r = requests.put(f"{tara_url}formgrader/api/grade/{grade_id}", json={"manual_score": 2.5}, headers=tara,
                         timeout=60)
        assert r.status_code == 200, r.text[:500]
        with sqlite3.connect(hub.gradebook) as db:
            assert db.execute("SELECT manual_score, needs_manual_grade FROM grade WHERE id = ?",
                              (grade_id,)).fetchone() == (2.5, 0)
            expected = db.execute(
                "SELECT SUM(COALESCE(g.manual_score, g.auto_score, 0)) FROM grade g "
                "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN submitted_assignment sa "
                "ON sn.assignment_id = sa.id WHERE sa.student_id = ?", (student,)).fetchone()[0]
        long = requests.get(f"{hub.dashboard}export?format=csv&long=1", headers=tara, timeout=60)
        assert long.status_code == 200, long.text[:300]
        table = pd.read_csv(io.BytesIO(long.content), dtype={"student_id": str})
        mine = table[(table["student_id"] == student) & (table["assignment"] == "ps1")].iloc[0]
        assert mine["raw_score"] == pytest.approx(expected)
        assert not bool(mine["needs_manual_grade"])
    finally:
        hub.stop_server("tara")
