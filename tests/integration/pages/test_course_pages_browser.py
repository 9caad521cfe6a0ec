"""The course pages in headless chromium on a 390 px phone: a late deadline shown in the student's
own time zone, the staff page without horizontal overflow, and axe-core finding nothing serious."""

from __future__ import annotations

import datetime as dt

import pytest
from support.browser import axe_problems, browser_page, chromium_available, screenshot

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")]

COURSE = "page-101"
PHONE = {"width": 390, "height": 844}


def overflow(page) -> int:  # noqa: ANN001
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def phone(page, token: str, tz: str = "UTC"):  # noqa: ANN001, ANN201
    """A new context like a signed-in phone in time zone `tz` (every request carries the user's token)."""
    context = page.context.browser.new_context(viewport=PHONE, timezone_id=tz, locale="en-US",
                                               extra_http_headers={"Authorization": f"token {token}"})
    context.set_default_timeout(60_000)
    return context


def test_student_course_page_with_a_late_deadline_on_a_phone(scenario, tmp_path):
    with browser_page() as page:
        context = phone(page, scenario.tokens["stu"], tz="Asia/Kolkata")
        try:
            p = context.new_page()
            r = p.goto(scenario.url(f"course/{COURSE}/"))
            assert r.status == 200
            ps1 = p.locator('article[data-assignment="ps1"]')
            assert "Deadline passed 3 h" in ps1.inner_text()
            assert "late by" in ps1.locator(".status").inner_text()
            due = ps1.locator(".due time")
            local = scenario.due["ps1"].astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
            text = due.inner_text()
            assert "GMT+5:30" in text and f":{local.minute:02d}" in text and "UTC" not in text, text
            assert due.get_attribute("title").endswith("UTC")  # the UTC text stays as a tooltip
            assert "Feedback ready" in ps1.inner_text() and "points" in ps1.inner_text()
            assert overflow(p) <= 0
            screenshot(p, tmp_path, "students", "course-page.png", full_page=True)
            assert axe_problems(p) == []
        finally:
            context.close()


def test_staff_page_fits_a_phone_and_passes_axe(scenario, tmp_path):
    with browser_page() as page:
        context = phone(page, scenario.tokens["prof"])
        try:
            p = context.new_page()
            assert p.goto(scenario.url(f"course/{COURSE}/staff")).status == 200
            row = p.locator('tr[data-assignment="ps1"]')
            assert "dead letters 1" in row.inner_text()
            assert overflow(p) <= 0, "the staff page scrolls sideways at 390 px"
            screenshot(p, tmp_path, "instructors", "course-staff-page.png", full_page=True)
            assert axe_problems(p) == []
            p.goto(scenario.url(f"course/{COURSE}/"))  # staff on the students' page: the note
            assert "on the staff of this course" in p.locator("main").inner_text()
            assert axe_problems(p) == []
        finally:
            context.close()
