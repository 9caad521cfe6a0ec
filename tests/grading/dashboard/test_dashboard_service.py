"""The dashboard inside the real grading service process (FakeHub for identity): who may see it,
what it shows, exports, the grade-sync and dead-job retry buttons."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from support.exchange import write_course
from support.fakehub import FakeHub
from support.grading import running_service
from support.synthetic_gradebook import StudentRow, build_gradebook

from coursehub.grading.lms.models import ScoreRow
from coursehub.grading.queue.models import GradingJob

COURSE = "dash-101"
USERS = {"prof": [f"course:{COURSE}:instructor"], "tara": [f"course:{COURSE}:ta"],
         "stu": [f"course:{COURSE}:student"], "outsider": ["course:other-1:instructor"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash")
    courses = root / "courses"
    write_course(courses, COURSE, {"instructors": ["prof"]},
                 [{"id": "ps1", "title": "Problem set 1", "due": "2026-10-01T23:59:00+00:00", "points": 9},
                  {"id": "ps2"}], late_policy={"grace_minutes": 5, "penalty_percent_per_day": 10})
    write_course(courses, "other-1", {}, [{"id": "hw"}])
    hub = FakeHub().start()
    tokens = {u: hub.add_user(u, g) for u, g in USERS.items()}
    # the gradebook exists before the service starts (which then syncs course.yaml's deadlines into it)
    state = root / "svc" / "state"
    gradebook = state / "course-dirs" / COURSE / "gradebook.db"
    gradebook.parent.mkdir(parents=True, exist_ok=True)
    build_gradebook(f"sqlite:///{gradebook}", students=[StudentRow("stu", "Stu", "Dent"),
                    StudentRow("=2+2", "Eve", "Il")] + [StudentRow(f"s{i}") for i in range(8)],
                    assignment_names=["ps1", "ps2"], submit_rate=1.0, seed=2)
    try:  # the dashboard plugin is in the default settings (grading.plugins)
        with running_service(root / "svc", courses, hub) as svc:
            yield svc, tokens, state
    finally:
        hub.stop()


def _get(svc, tokens, who, path, **kw):
    return requests.get(svc.url + path, headers={"Authorization": f"token {tokens[who]}"}, timeout=60,
                        allow_redirects=False, **kw)


def _post(svc, tokens, who, path, data=None):
    return requests.post(svc.url + path, headers={"Authorization": f"token {tokens[who]}"}, data=data or {},
                         timeout=60, allow_redirects=False)


def _status(svc, tokens, who, redirect) -> str:
    """The status line the page shows after a POST's redirect ("" when it shows none)."""
    import re
    from html import unescape

    assert redirect.status_code == 302, redirect.text[:300]
    page = requests.get(requests.compat.urljoin(svc.url, redirect.headers["Location"]), timeout=60,
                        headers={"Authorization": f"token {tokens[who]}"})
    found = re.search(r'<p class="note" role="status">(.*?)</p>', page.text, re.S)
    return unescape(found.group(1)) if found else ""


def _db(state: Path) -> Session:
    return Session(create_engine(f"sqlite:///{state / 'grading.sqlite'}"))


def test_staff_see_the_page_students_do_not(env):
    svc, tokens, _ = env
    for who in ("prof", "tara"):
        r = _get(svc, tokens, who, f"dashboard/{COURSE}/")
        assert r.status_code == 200, r.text[:500]
        assert "Problem set 1" in r.text and "<svg" in r.text
        assert 'user-redirect/formgrader" target="_blank"' in r.text
    for who in ("stu", "outsider"):
        r = _get(svc, tokens, who, f"dashboard/{COURSE}/")
        assert r.status_code == 403
        assert "Problem set 1" not in r.text
        assert _get(svc, tokens, who, f"dashboard/{COURSE}/export?format=csv").status_code == 403
    assert _get(svc, tokens, "prof", "dashboard/no-such-course/").status_code == 404
    anonymous = requests.get(svc.url + f"dashboard/{COURSE}/", allow_redirects=False, timeout=30)
    assert anonymous.status_code in (302, 303) and "Problem set 1" not in anonymous.text


def test_page_counts(env):
    svc, tokens, _ = env
    html = _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    row = html.split('<tr data-assignment="ps1">', 1)[1].split("</tr>", 1)[0]
    assert 'class="submitted">10</td>' in row  # everyone submitted (counted from the gradebook)
    assert 'class="released">no</td>' in row


def test_student_table_late_agrees_with_the_export(env):
    """One rule for "late": a cell is marked late exactly where the export takes a late penalty
    (the course has 10 % per day), and the page's late count per assignment is the same number."""
    import re
    from html import unescape

    svc, tokens, _ = env
    html = _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    long = pd.read_csv(io.BytesIO(_get(svc, tokens, "prof", f"dashboard/{COURSE}/export?format=csv&long=1").content),
                       dtype={"student_id": str})
    long["student_id"] = long["student_id"].str.replace(r"^'(?=[=+@-])", "", regex=True)  # the CSV's formula guard
    marked = {}
    for sid, body in re.findall(r'<tr data-student="([^"]*)"(.*?)</tr>', html, re.S):
        for aid, cell in re.findall(r'<td class="num cell" data-assignment="([^"]*)"[^>]*>(.*?)</td>', body, re.S):
            marked[(unescape(sid), aid)] = 'class="badge late"' in cell
    assert len(marked) == 10 * 2
    penalized = {(r.student_id, r.assignment): bool(r.late_submission_penalty > 0) for r in long.itertuples()
                 if r.raw_score > 0}
    assert any(penalized.values()), "the synthetic gradebook has late work"
    assert {k: marked[k] for k in penalized} == penalized
    for aid in ("ps1", "ps2"):
        row = html.split(f'<tr data-assignment="{aid}">', 1)[1].split("</tr>", 1)[0]
        late = int(re.search(r'class="late">(\d+)</td>', row).group(1))
        assert late == sum(v for (_s, a), v in marked.items() if a == aid)
    # sorting and filtering work without JavaScript too
    by_score = _get(svc, tokens, "prof", f"dashboard/{COURSE}/", params={"sort": "ps1", "order": "desc"}).text
    order = re.findall(r'<tr data-student="([^"]*)"', by_score)
    scores = long[long["assignment"] == "ps1"].set_index("student_id")["score"]
    assert [scores[unescape(o)] for o in order] == sorted(scores, reverse=True)
    only = _get(svc, tokens, "prof", f"dashboard/{COURSE}/", params={"q": "eve"}).text
    assert re.findall(r'<tr data-student="([^"]*)"', only) == ["=2+2"]


def test_exports_from_the_dashboard(env):
    svc, tokens, _ = env
    r = _get(svc, tokens, "tara", f"dashboard/{COURSE}/export?format=csv")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment;")
    wide = pd.read_csv(io.BytesIO(r.content), dtype={"student_id": str})
    assert len(wide) == 10 and {"ps1", "ps2", "total"} <= set(wide.columns)
    assert "'=2+2" in set(wide["student_id"])
    long = pd.read_csv(io.BytesIO(_get(svc, tokens, "tara", f"dashboard/{COURSE}/export?format=csv&long=1").content))
    assert len(long) == 20
    canvas = _get(svc, tokens, "prof", f"dashboard/{COURSE}/export?format=canvas").text
    assert canvas.startswith("Student,ID,SIS User ID,SIS Login ID,Section,ps1,ps2")
    xlsx = _get(svc, tokens, "prof", f"dashboard/{COURSE}/export?format=xlsx")
    assert xlsx.content[:2] == b"PK"
    assert _get(svc, tokens, "prof", f"dashboard/{COURSE}/export?format=exe").status_code == 400


def test_sync_retry_button_and_sync_now(env):
    svc, tokens, state = env
    with _db(state) as s:
        s.add(ScoreRow(course_id=COURSE, assignment="ps1", student="stu", label="ps1", score_given=1.0,
                       score_maximum=9.0, produced_at=dt.datetime(2026, 10, 3), status="failed", attempts=8,
                       last_error="HTTP 400 line item gone"))
        s.commit()
        row_id = s.scalars(select(ScoreRow.id)).first()
    html = _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    assert "HTTP 400 line item gone" in html and "Retry all failed" in html
    assert _post(svc, tokens, "stu", f"dashboard/{COURSE}/sync/retry", {"id": str(row_id)}).status_code == 403
    forged = requests.post(svc.url + f"dashboard/{COURSE}/sync/retry", data={"id": str(row_id)}, timeout=60,
                           allow_redirects=False)  # a cross-site form: no token, no _xsrf
    assert forged.status_code in (302, 403)
    with _db(state) as s:
        assert s.get(ScoreRow, row_id).status == "failed"
    r = _post(svc, tokens, "prof", f"dashboard/{COURSE}/sync/retry", {"id": str(row_id)})
    assert _status(svc, tokens, "prof", r) == "1 grade(s) will be sent again."
    with _db(state) as s:
        assert s.get(ScoreRow, row_id).status == "pending"
    # "send now" queues every changed grade; with no LMS registered it says why nothing went out
    r = _post(svc, tokens, "prof", f"dashboard/{COURSE}/sync/now")
    assert "not sent" in _status(svc, tokens, "prof", r)
    with _db(state) as s:
        queued = s.scalars(select(ScoreRow).where(ScoreRow.status == "pending")).all()
        assert len(queued) == 20  # 10 students x 2 assignments (the older stu/ps1 row was superseded)
        assert s.get(ScoreRow, row_id).status == "superseded"
    again = _post(svc, tokens, "prof", f"dashboard/{COURSE}/sync/now")
    assert _status(svc, tokens, "prof", again).startswith("0 changed grade"), "nothing changed since: nothing queued"


def test_a_made_up_status_line_is_not_shown(env):
    """?msg= from a link someone else wrote (phishing) must not appear as the service's own words."""
    svc, tokens, _ = env
    page = _get(svc, tokens, "prof", f"dashboard/{COURSE}/", params={"msg": "Your session expired: log in at evil"})
    assert page.status_code == 200 and "evil" not in page.text and 'role="status"' not in page.text
    from coursehub.grading.dashboard.handlers import flash

    signed_elsewhere = flash("Your session expired: log in at evil")  # another process's key
    page = _get(svc, tokens, "prof", f"dashboard/{COURSE}/", params={"msg": signed_elsewhere})
    assert "evil" not in page.text


def test_dead_job_retry(env):
    svc, tokens, state = env
    with _db(state) as s:
        job = GradingJob(course_id=COURSE, assignment="ps1", student="stu", payload={}, status="dead",
                         attempts=3, max_attempts=3, last_error="kernel died")
        other = GradingJob(course_id="other-1", assignment="hw", student="x", payload={}, status="dead",
                           attempts=3, max_attempts=3, last_error="x")
        s.add_all([job, other])
        s.commit()
        jid, oid = job.id, other.id
    assert "kernel died" in _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    _post(svc, tokens, "prof", f"dashboard/{COURSE}/jobs/retry", {"id": str(oid)})  # not this course's job
    _post(svc, tokens, "prof", f"dashboard/{COURSE}/jobs/retry", {"id": str(jid)})
    with _db(state) as s:
        assert s.get(GradingJob, jid).status == "queued"
        assert s.get(GradingJob, oid).status == "dead"


def test_the_course_pages_come_with_the_dashboard_plugin(env):
    svc, tokens, _ = env
    staff = _get(svc, tokens, "tara", f"course/{COURSE}/staff")
    assert staff.status_code == 200 and "Problem set 1" in staff.text and "dead letters" in staff.text
    mine = _get(svc, tokens, "stu", f"course/{COURSE}/")
    assert mine.status_code == 200 and 'data-assignment="ps1"' in mine.text
    assert "Eve" not in mine.text and "=2+2" not in mine.text  # other students' rows stay out
    assert _get(svc, tokens, "stu", f"course/{COURSE}/staff").status_code == 403
