"""The dashboard's numbers and page, from a synthetic gradebook and exchange records."""

from __future__ import annotations

import datetime as dt
import re

from support.synthetic_gradebook import StudentRow, build_gradebook

from coursehub.grading.dashboard.data import build_overview
from coursehub.grading.dashboard.page import render_page
from coursehub.grading.export import load_grades
from coursehub.platform.courses import Assignment, Course, LatePolicy

UTC = dt.UTC
DUE = dt.datetime(2026, 10, 1, 23, 59, tzinfo=UTC)


def course() -> Course:
    return Course(id="c1", title="Course <one>", assignments=[
        Assignment(id="ps01", title="First & foremost", due=DUE), Assignment(id="ps02", due=DUE + dt.timedelta(days=7)),
        Assignment(id="ps03")], late_policy=LatePolicy(grace_minutes=10))


def test_counts_from_exchange_and_gradebook(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    build_gradebook(url, students=[StudentRow(f"s{i}") for i in range(6)] + [StudentRow("<script>x</script>")],
                    assignment_names=["ps01", "ps02"], submit_rate=1.0, seed=5)
    grades = load_grades(db_url=url, course=course())
    at = lambda h: (DUE + dt.timedelta(hours=h)).astimezone(UTC).replace(tzinfo=None).isoformat()  # noqa: E731
    submissions = [
        {"assignment_id": "ps01", "student_id": "s0", "submitted_at": at(-30), "late": False},
        {"assignment_id": "ps01", "student_id": "s0", "submitted_at": at(2), "late": True},  # resubmitted late
        {"assignment_id": "ps01", "student_id": "s1", "submitted_at": at(5), "late": True},
        {"assignment_id": "ps01", "student_id": "s2", "submitted_at": at(-1), "late": False},
    ]
    o = build_overview(course(), grades, [{"assignment_id": "ps01"}], submissions,
                       queue={"done": 5, "dead": 1}, sync={"sent": 3, "failed": 1},
                       sync_failed=[{"id": 7, "student": "s1", "assignment": "ps01", "score_given": 1.0,
                                     "score_maximum": 9.0, "last_error": "HTTP 400 <b>bad</b>"}])
    by = {a.name: a for a in o.assignments}
    assert [a.name for a in o.assignments] == ["ps01", "ps02", "ps03"]
    a1 = by["ps01"]
    assert (a1.released, a1.submitted, a1.late) == (True, 3, 2)
    assert a1.graded + a1.needs_manual == 7
    assert len(a1.scores) == 7 and a1.max_score == 9.0
    assert sorted(round(h) for h in a1.submission_hours) == [-30, -1, 2, 5]
    a2 = by["ps02"]  # no exchange records: counted from the gradebook
    assert (a2.released, a2.submitted) == (False, 7)
    assert a2.late == int((grades.long.query("assignment == 'ps02'")["minutes_late"] > 10).sum())
    assert by["ps03"].submitted == 0 and by["ps03"].scores == []
    assert o.students == 7

    html = render_page(o, base="/services/grading/dashboard/c1/", xsrf="tok\"en", formgrader_url="/hub/user-redirect/formgrader")
    # the page's own two scripts (local times, table sorting) are the only ones: names are escaped
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert html.count("<script") == 2
    assert "Course &lt;one&gt;" in html and "First &amp; foremost" in html and "HTTP 400 &lt;b&gt;bad&lt;/b&gt;" in html
    assert 'value="tok&#34;en"' in html and 'tok"en' not in html
    assert re.search(r'href="/hub/user-redirect/formgrader" target="_blank" rel="noopener"', html)
    assert html.count("<svg") == 3 + 2  # three distributions, two timelines (ps03 has no deadline)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share element ids"
    for fmt in ("format=csv", "format=csv&amp;long=1", "format=canvas", "format=xlsx"):
        assert f"export?{fmt}" in html


def test_without_gradebook():
    o = build_overview(course(), None, [], [], problems=["No gradebook yet"])
    assert [a.submitted for a in o.assignments] == [0, 0, 0]
    html = render_page(o, base="/d/c1/", xsrf="x", formgrader_url="/f")
    assert "No gradebook yet" in html


def test_gradebook_location_follows_the_course_directory_config(tmp_path):
    from types import SimpleNamespace

    from coursehub.grading.dashboard.handlers import gradebook_url_for

    settings = SimpleNamespace(state_dir=tmp_path)
    root = tmp_path / "course-dirs" / "c1"
    root.mkdir(parents=True)
    assert gradebook_url_for(settings, "c1") == f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.db_url = 'postgresql://db/c1'\n")
    assert gradebook_url_for(settings, "c1") == "postgresql://db/c1"


def test_late_follows_the_current_deadline_and_grace_not_the_stored_flag():
    """An extension granted after a late submit makes it on time (as the export sees it); a
    submission inside the grace period is on time; the exchange's flag from submit time is not used."""
    from coursehub.platform.courses import Extension

    c = course()
    c = c.model_copy(update={"extensions": [Extension(student="ext", assignment="ps01",
                                                      due=DUE + dt.timedelta(days=1))]})
    at = lambda m: (DUE + dt.timedelta(minutes=m)).isoformat()  # noqa: E731
    subs = [{"assignment_id": "ps01", "student_id": "ext", "submitted_at": at(120), "late": True},
            {"assignment_id": "ps01", "student_id": "grace", "submitted_at": at(9), "late": True},
            {"assignment_id": "ps01", "student_id": "late", "submitted_at": at(11), "late": False}]
    o = build_overview(c, None, [], subs, sync_status={("late", "ps01"): "failed"})
    cells = {line.student_id: line.cells["ps01"] for line in o.table}
    assert {k: v.late for k, v in cells.items()} == {"ext": False, "grace": False, "late": True}
    assert o.assignments[0].late == 1 and cells["late"].sync == "failed" and cells["ext"].sync == ""
    html = render_page(o, base="/d/c1/", xsrf="x", formgrader_url="/f", sort="name", query="LAT")
    assert "3 students" in html and "1 of 3 students shown" in html
    assert html.count('<tr data-student="') == 1 and "LMS sync failed" in html


def test_plots_have_text_alternatives_and_never_an_empty_timeline():
    from coursehub.grading.dashboard.plots import score_histogram, submission_timeline, timeline_bins

    svg = score_histogram([1.0, 2.0, 2.5], 9.0, "a")
    assert 'role="img"' in svg and 'aria-labelledby="scores-a-title scores-a-desc"' in svg
    assert '<title id="scores-a-title">Grade distribution</title>' in svg and "3 graded submissions" in svg
    far = [-200.0, 150.0, 400.0]  # all outside ±72 h
    window, bins = timeline_bins(far)
    assert window >= 400 and sum(b.count for b in bins) == 3
    assert "3 submissions" in submission_timeline(far, "b") and "outside" not in submission_timeline(far, "b")
    o = build_overview(course(), None, [], [{"assignment_id": "ps01", "student_id": "one",
                                             "submitted_at": DUE.isoformat(), "late": False}])
    html = render_page(o, base="/d/c1/", xsrf="x", formgrader_url="/f")
    assert "1 student in the gradebook" in html and "1 students" not in html
    assert html.count("<details>") == 3 + 2  # a data table beside every plot
