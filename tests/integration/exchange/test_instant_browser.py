"""Instant feedback as a student meets it (issue 13): after Submit in the Assignments panel, the
visible tests' results appear in JupyterLab within seconds; hidden tests neither count nor show.

Real processes: the grading service (FakeHub) with its default plugins, so the instant pool runs the
submission in the real bubblewrap sandbox against the demo course's ps1; JupyterLab configured as
the platform configures user servers; headless chromium.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import requests
import yaml
from support import samples
from support.fakehub import FakeHub
from support.grading import running_service

from coursehub.grading.archive import pack

from .test_client_ux import COURSE, browser, open_assignments, screenshot, user_server

DEMO_PS1 = Path(__file__).resolve().parents[3] / "courses" / "demo-101" / "source" / "ps1"
HIDDEN_SOURCE = ("BEGIN HIDDEN", "mean([5])", "squares(10)", "warmest_day == 7", "ValueError")


@browser
def test_browser_instant_feedback_shows_visible_tests_only_after_submit(tmp_path_factory):
    from support.browser import browser_page

    if not shutil.which("bwrap"):
        pytest.fail("bubblewrap is not installed (scripts/setup --test installs it)")
    tmp = tmp_path_factory.mktemp("instant")
    courses = tmp / "courses"
    shutil.copytree(DEMO_PS1, courses / COURSE / "source" / "ps1")
    (courses / COURSE / "course.yaml").write_text(yaml.safe_dump({
        "id": COURSE, "title": "Instant", "staff": {"instructors": ["inst"]},
        "assignments": [{"id": "ps1", "instant_feedback": True}]}))
    released = samples.make_course(tmp / "generated", DEMO_PS1, course_id=COURSE) / "release" / "ps1"
    hub = FakeHub().start()
    try:
        tokens = {"inst": hub.add_user("inst", [f"course:{COURSE}:instructor"]),
                  "alice": hub.add_user("alice", [f"course:{COURSE}:student"])}
        with running_service(tmp / "svc", courses, hub) as svc:
            r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/ps1/release", timeout=60,
                             data=pack({p.name: p.read_bytes() for p in sorted(released.glob("*.ipynb"))}),
                             headers={"Authorization": f"token {tokens['inst']}"})
            assert r.status_code == 201, r.text
            with user_server(tmp / "alice", svc.url, tokens["alice"]) as student:
                assert student.panel("fetch", "ps1")["success"]
                folder = student.home / COURSE / "ps1"
                nbs = {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}
                # squares right; mean passes its visible tests but not the hidden ones; warmest_day
                # fails its visible test
                samples.answer(nbs, squares=samples.SOLUTIONS["squares"],
                               mean="def mean(values):\n    return sum(values) / len(values)\n",
                               warmest="warmest_day = 0\n")
                for name, nb in nbs.items():
                    nbformat.write(nb, folder / f"{name}.ipynb")
                with browser_page(timeout_ms=180_000) as page:
                    open_assignments(page, student)
                    row = page.locator(".list_item", has_text="ps1").first
                    row.locator("button", has_text="Submit").wait_for()
                    assert page.locator(".Toastify__toast", has_text="Instant feedback").count() == 0
                    row.locator("button", has_text="Submit").click()
                    page.locator(".Toastify__toast", has_text="Submitted ps1 at").wait_for()
                    toast = page.locator(".Toastify__toast", has_text="Instant feedback on ps1")
                    toast.wait_for()
                    text = toast.inner_text()
                    assert "Instant feedback on ps1: 2 of 3 visible tests pass; failing: test-warmest." in text
                    toast.locator("button", has_text="Details").click()
                    details = page.locator(".coursehub-instant-details")
                    details.wait_for()
                    lines = details.locator("li").all_inner_texts()
                    # test-mean's hidden tests would fail (mean([]) does not raise): it still passes here
                    assert lines[:3] == ["PASS test-squares (2 points)", "PASS test-mean (3 points)",
                                         "FAIL test-warmest (2 points): AssertionError"], lines
                    assert "this is not your grade" in lines[3]
                    shown = text + details.inner_text()
                    assert not any(h in shown for h in HIDDEN_SOURCE), shown
                    page.wait_for_timeout(500)
                    screenshot(page, tmp, "students", "instant-feedback.png")
    finally:
        hub.stop()
