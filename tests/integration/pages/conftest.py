"""One course as students and staff meet it, served by the grading service on a thread (FakeHub for
identity): ps1 due 3 h ago (stu submitted late, got feedback, grade sent to the LMS), ps2 due in two
days (fetched), ps3 not released; autograde jobs done, queued and dead."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from support.exchange import make_notebook, write_course
from support.fakehub import FakeHub
from support.grading import InProcessService, inprocess_service
from support.synthetic_gradebook import StudentRow, build_gradebook

from coursehub.grading.archive import pack

COURSE = "page-101"
USERS = {"stu": [f"course:{COURSE}:student"], "sam": [f"course:{COURSE}:student"],
         "prof": [f"course:{COURSE}:instructor"], "tara": [f"course:{COURSE}:ta"],
         "outsider": ["course:other-1:student"]}
FEEDBACK = "<html><body><pre>ok</pre></body></html>"


@dataclass
class Scenario:
    svc: InProcessService
    tokens: dict[str, str]
    due: dict[str, dt.datetime]

    def url(self, path: str) -> str:
        return f"{self.svc.url}{path}"


def _iso(d: dt.datetime) -> str:
    return d.isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    from coursehub.grading.dashboard.handlers import dashboard_handlers
    from coursehub.grading.dashboard.pages import page_handlers
    from coursehub.grading.lms.models import ScoreRow
    from coursehub.grading.lms.runtime import outbox_sessions
    from coursehub.grading.queue.models import GradingJob
    from coursehub.grading.service.core import Caller

    root = tmp_path_factory.mktemp("pages")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    due = {"ps1": now - dt.timedelta(hours=3), "ps2": now + dt.timedelta(days=2, hours=1),
           "ps3": now + dt.timedelta(days=9)}
    courses = root / "courses"
    write_course(courses, COURSE, {"instructors": ["prof"], "teaching_assistants": ["tara"]},
                 [{"id": "ps1", "title": "Problem set 1", "due": _iso(due["ps1"])},
                  {"id": "ps2", "title": "Loops & lists", "due": _iso(due["ps2"])},
                  {"id": "ps3", "title": "Problem set 3", "due": _iso(due["ps3"])}],
                 title="Data & Society", late_policy={"grace_minutes": 5, "penalty_percent_per_day": 10,
                                                      "max_late_days": 3})
    write_course(courses, "other-1", {}, [{"id": "hw"}])
    hub = FakeHub().start()
    tokens = {u: hub.add_user(u, g) for u, g in USERS.items()}
    try:
        with inprocess_service(root / "svc", courses, hub,
                               extra_handlers=dashboard_handlers() + page_handlers()) as svc:
            svc.app.settings["coursehub_settings"] = svc.settings
            core = svc.core
            who = {u: Caller(u, {COURSE: frozenset({g[0].rsplit(":", 1)[1]})}) for u, g in USERS.items()
                   if u != "outsider"}
            nb = pack({"p1.ipynb": make_notebook().encode()})
            for aid in ("ps1", "ps2"):
                core.release(who["prof"], COURSE, aid, nb, force=False)
                core.release_files(who["stu"], COURSE, aid)
            sub = core.submit(who["stu"], COURSE, "ps1", pack({"p1.ipynb": make_notebook("mine").encode()}))
            core.submit(who["sam"], COURSE, "ps1", pack({"p1.ipynb": make_notebook("sams").encode()}))
            core.collection_archive(who["prof"], COURSE, "ps1", [sub["id"]])
            core.release_feedback(who["prof"], COURSE, "ps1", "stu", sub["timestamp"],
                                  pack({"p1.html": FEEDBACK.encode()}))
            gradebook = svc.settings.state_dir / "course-dirs" / COURSE / "gradebook.db"
            gradebook.parent.mkdir(parents=True, exist_ok=True)
            build_gradebook(f"sqlite:///{gradebook}", students=[StudentRow("stu"), StudentRow("sam")],
                            assignment_names=["ps1"], submit_rate=1.0, late_rate=0.0, manual_cells=0, seed=3)
            with outbox_sessions(svc.settings)() as s:
                s.add_all([
                    ScoreRow(course_id=COURSE, assignment="ps1", student="stu", score_given=5, score_maximum=9,
                             produced_at=now, status="sent"),
                    ScoreRow(course_id=COURSE, assignment="ps1", student="sam", score_given=1, score_maximum=9,
                             produced_at=now, status="failed"),
                    GradingJob(course_id=COURSE, assignment="ps1", student="stu", status="done"),
                    GradingJob(course_id=COURSE, assignment="ps1", student="sam", status="dead", attempts=3),
                    GradingJob(course_id=COURSE, assignment="ps2", student="sam", status="queued"),
                ])
                s.commit()
            yield Scenario(svc, tokens, due)
    finally:
        hub.stop()
