"""The student course page and the staff landing page over HTTP: who sees what, and only their own."""

from __future__ import annotations

import re

import requests

COURSE = "page-101"


def get(sc, who: str | None, path: str) -> requests.Response:
    headers = {"Authorization": f"token {sc.tokens[who]}"} if who else {}
    return requests.get(sc.url(path), headers=headers, timeout=60, allow_redirects=False)


def card(html: str, assignment: str) -> str:
    m = re.search(rf'<article[^>]*data-assignment="{assignment}".*?</article>', html, re.S)
    assert m, f"no card for {assignment}"
    return m.group(0)


def test_student_sees_own_assignments_with_status_due_score_and_lms(scenario):
    r = get(scenario, "stu", f"course/{COURSE}/")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
    html = r.text
    assert "Data &amp; Society" in html
    assert "10 % of the points per day" in html and "5 minutes of grace" in html and "more than 3 days" in html
    ps1 = card(html, "ps1")
    assert 'data-status="feedback"' in ps1 and "Feedback ready" in ps1
    assert "late by" in ps1 and "Deadline passed 3 h" in ps1
    due = scenario.due["ps1"]
    assert f'<time datetime="{due.isoformat(timespec="seconds")}" data-local>{due:%Y-%m-%d %H:%M} UTC</time>' in ps1
    assert re.search(r"[\d.]+ of [\d.]+ points", ps1)
    assert "In the LMS" in ps1
    ps2 = card(html, "ps2")
    assert 'data-status="fetched"' in ps2 and "2 days" in ps2 and "left" in ps2
    assert "points" not in ps2 and "Loops &amp; lists" in ps2 and "Loops & lists" not in ps2  # autoescaped
    assert 'data-status="unreleased"' in card(html, "ps3")


def test_student_sees_nothing_of_other_students(scenario):
    html = get(scenario, "sam", f"course/{COURSE}/").text
    ps1 = card(html, "ps1")
    assert 'data-status="graded"' in ps1  # graded, but no feedback released: no score yet
    assert "points" not in ps1 and "stu" not in html
    assert "Not in the LMS yet" in ps1


def test_staff_get_a_note_on_the_student_page_and_the_staff_page(scenario):
    html = get(scenario, "prof", f"course/{COURSE}/").text
    assert "You are on the staff of this course" in html
    assert f'href="/services/grading/dashboard/{COURSE}/"' in html and "data-assignment" not in html
    for who in ("prof", "tara"):
        r = get(scenario, who, f"course/{COURSE}/staff")
        assert r.status_code == 200, r.text[:500]
    html = r.text
    row = re.search(r'<tr data-assignment="ps1">.*?</tr>', html, re.S).group(0)
    assert "queued 0, running 0, done 1" in row and "dead letters 1" in row
    assert "not collected" not in row and re.search(r'class="submitters">2<', row)
    row2 = re.search(r'<tr data-assignment="ps2">.*?</tr>', html, re.S).group(0)
    assert "queued 1" in row2 and "not collected" in row2
    row3 = re.search(r'<tr data-assignment="ps3">.*?</tr>', html, re.S).group(0)
    assert "not released" in row3
    assert re.search(r"failed</span> 1", html) and re.search(r"sent</span> 1", html)
    assert 'href="/user/tara/formgrader"' in html and f'href="/services/grading/dashboard/{COURSE}/"' in html


def test_who_may_not_see_the_pages(scenario):
    for who in ("stu", "outsider"):
        r = get(scenario, who, f"course/{COURSE}/staff")
        assert r.status_code == 403 and "dead letters" not in r.text
    assert get(scenario, "outsider", f"course/{COURSE}/").status_code == 403
    assert get(scenario, "stu", "course/no-such-course/").status_code == 404
    anonymous = get(scenario, None, f"course/{COURSE}/")
    assert anonymous.status_code in (302, 303) and "Problem set" not in anonymous.text


def test_the_dashboard_links_the_course_pages(scenario):
    html = get(scenario, "prof", f"dashboard/{COURSE}/").text
    assert f"/services/grading/course/{COURSE}/staff" in html and f'/services/grading/course/{COURSE}/"' in html
