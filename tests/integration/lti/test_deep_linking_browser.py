"""From the LMS's "add an activity" to the grade in the LMS's column, in a real browser.

The instructor picks ps1 (and a textbook page) in the deep linking picker; the signed response is
auto-posted to the fake LMS, which verifies it and creates the links, ps1's with its own line item
(as Canvas and Moodle do). The instructor opens the created link and releases ps1; a student opens
it in the browser (JupyterLab, the fetched notebook), submits; the instructor collects, the hub's
worker autogrades, and the grading service's timer sends the honest progress to the line item the
deep link created: `Submitted`/`Pending`, then the autograded score as `PendingManual` (ps1 has a
manually graded answer). No second ps1 column appears.
"""

from __future__ import annotations

import re

import pytest
import requests
from fakelms import LaunchSpec
from fakelms.client import launch, release_assignment, staff_landing
from fakelms.server import ROLE
from support.browser import browser_page, chromium_available
from support.net import wait_until

from coursehub.platform.lti import claims as C

from .conftest import lti_hub, username_for
from .test_launches import new_sub

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")

#: An answer to the hand-graded question: without one nbgrader scores it 0 itself (FullyGraded).
EXPLANATION = "Mostly warmer, but one week of data from one place says little."
SOLUTION = 'def squares(n):\n    """Return the first n squares, starting at 1."""\n    return [i * i for i in range(1, n + 1)]'


@pytest.fixture(scope="module")
def lti_env(tmp_path_factory):
    # Grades leave every 2 s instead of every 30; no roster round (an empty fake roster) mid-flow.
    with lti_hub(tmp_path_factory.mktemp("lti-browser"),
                 {"grading": {"lms": {"send_interval_seconds": 2, "roster_interval_seconds": 0}}}) as env:
        yield env


def _scores(lms, lineitem: str) -> list[dict]:
    return list(lms.scores.get(lineitem, []))


def test_deep_linked_ps1_from_the_picker_to_the_grade(lti_env):
    hub, lms = lti_env
    teacher_sub, student_sub = new_sub(), new_sub()
    teacher, student = username_for(lms, teacher_sub), username_for(lms, student_sub)
    spec = LaunchSpec(sub=teacher_sub, roles=[ROLE["instructor"]], message_type=C.DEEP_LINKING_REQUEST,
                      dl_settings={"accept_multiple": True, "title": "Add an activity"})
    before = len(lms.created_links)
    with browser_page(timeout_ms=60_000) as page:
        page.goto(lms.login_initiation(hub.url, lms.prepare(spec), spec))
        page.locator("#lti-deep-link-picker").wait_for()
        assert "Add an activity" in page.inner_text("#lti-deep-link-picker")
        page.check('input[data-item="assignment:ps1"]')
        page.check('input[data-item="textbook:02-lists"]')
        page.click("#dl-add")
        page.wait_for_url(f"{lms.url}/deep_link_return")
        page.get_by_text('"created": 2').wait_for()
        links = lms.created_links[before:]
        items = [link["item"] for link in links]
        assert [i["custom"] for i in items] == [{"assignment": "ps1"}, {"textbook": "02-lists"}]
        assert items[0]["lineItem"]["scoreMaximum"] == 10 and "lineItem" not in items[1]
        ps1 = links[0]
        column = {"label": "Problem set 1", "scoreMaximum": 10, "resourceId": "ps1", "tag": "coursehub",
                  "resourceLinkId": ps1["resource_link_id"], "id": ps1["lineitem"]}
        assert lms.lineitems_of("ctx-101") == [column] and links[1]["lineitem"] is None

        # The instructor opens the created link: the course's staff page; they release ps1.
        prof = requests.Session()
        r = launch(prof, hub.url, lms, lms.link_launch(ps1, sub=teacher_sub, roles=[ROLE["instructor"]]))
        assert staff_landing(prof, hub.url, r.headers["Location"], "demo-101") == teacher
        release_assignment(hub, teacher)

        # A student opens the same link in the browser: JupyterLab with the fetched notebook.
        page.context.clear_cookies()
        spec = lms.link_launch(ps1, sub=student_sub, name="Sam Student")
        page.goto(lms.login_initiation(hub.url, lms.prepare(spec), spec))
        page.wait_for_url(re.compile(rf"/user/{student}/lab/tree/demo-101/ps1/part1\.ipynb"), timeout=180_000)
        panel = page.locator(".jp-NotebookPanel:visible").first
        panel.wait_for(timeout=120_000)
        panel.locator(".jp-Cell", has_text="def squares(n)").first.wait_for(timeout=60_000)

    # The student answers question 1 and the hand-graded question 4, and submits from their server
    # (the Assignments panel's API).
    server = f"{hub.url}/user/{student}"
    admin = {"Authorization": f"token {hub.token}"}
    path = hub.state_dir / "homes" / student / "demo-101" / "ps1" / "part1.ipynb"
    text = path.read_text()
    assert "YOUR CODE HERE" in text and "BEGIN SOLUTION" not in text
    for notebook, cell_id, answer in (("part1", "squares", SOLUTION), ("part2", "explain", EXPLANATION)):
        url = f"{server}/api/contents/demo-101/ps1/{notebook}.ipynb"
        model = requests.get(url, headers=admin, timeout=30).json()
        cell = next(c for c in model["content"]["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == cell_id)
        cell["source"] = answer
        r = requests.put(url, headers=admin, timeout=30, json={"type": "notebook", "format": "json",
                                                               "content": model["content"]})
        assert r.status_code == 200, r.text
    r = requests.post(f"{server}/assignments/submit", data={"course_id": "demo-101", "assignment_id": "ps1"},
                      headers=admin, timeout=60)
    assert r.json()["success"], r.json()

    # The LMS hears "submitted" on the deep-linked column before any grade exists.
    wait_until(lambda: _scores(lms, ps1["lineitem"]), timeout=120, what="the Submitted score in the LMS")
    first = _scores(lms, ps1["lineitem"])[0]
    assert (first["userId"], first["activityProgress"], first["gradingProgress"]) == (
        student_sub, "Submitted", "Pending")
    assert "scoreGiven" not in first

    # The instructor collects; the worker autogrades; the autograded score reaches the same column.
    r = requests.post(f"{server.replace(student, teacher)}/formgrader/api/assignment/ps1/collect",
                      headers={"Authorization": f"token {hub.user_token(teacher)}"}, timeout=120)
    assert r.json()["success"], r.json()
    wait_until(lambda: any(s.get("gradingProgress") == "PendingManual" for s in _scores(lms, ps1["lineitem"])),
               timeout=300, what="the autograded score in the LMS")
    graded = next(s for s in _scores(lms, ps1["lineitem"]) if s.get("gradingProgress") == "PendingManual")
    assert (graded["userId"], graded["scoreGiven"], graded["scoreMaximum"]) == (student_sub, 2, 10)
    # Exactly one ps1 column: the grading service found the LMS's own, it made none.
    assert [i["id"] for i in lms.lineitems_of("ctx-101") if i.get("resourceId") == "ps1"] == [ps1["lineitem"]]
    assert all(url == ps1["lineitem"] for url in lms.scores)
    hub.stop_server(student)
    hub.stop_server(teacher)
