"""The LMS sync wired to what the hub stores: its LTI store (launch services, identities), the tool key
it generated, the settings' platform registrations."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from nbgrader.api import Gradebook
from support.synthetic_gradebook import build_gradebook

from coursehub.grading.export import load_grades
from coursehub.grading.gradebook import create_gradebook
from coursehub.grading.lms.gradesync import enqueue_changes
from coursehub.grading.lms.models import Base
from coursehub.grading.lms.runtime import make_sender, outbox_sessions, sync_course_roster
from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path
from coursehub.platform.lti.store import LtiStore

from .conftest import serve_hub_records_lms

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


async def test_roster_and_grades_through_the_hubs_records(tmp_path):
    lms, server, settings = serve_hub_records_lms(tmp_path, course_dir=None)
    state = settings.state_dir
    store = LtiStore(f"sqlite:///{state / 'lti.sqlite'}")
    try:
        # the instructor launched once: the course's AGS and NRPS endpoints are known
        store.save_services(username="campus-prof", course="c1", platform="campus", issuer=lms.base_url,
                            client_id="tool-9", deployment_id="d1", context_id="ctx1", subject="prof",
                            role="instructor", ags={"lineitems": lms.lineitems_url("ctx1"), "scope": []},
                            nrps={"context_memberships_url": lms.memberships_url("ctx1")}, resource_link=None)
        lms.members["ctx1"] = [{"user_id": u, "roles": [LEARNER], "given_name": u.title(), "family_name": "X",
                                "email": f"{u}@x.example"} for u in ("ann", "bob", "cy")]
        gradebook = f"sqlite:///{tmp_path / 'gradebook.db'}"
        create_gradebook(gradebook)
        (report,) = await sync_course_roster(settings, "c1", gradebook)
        assert report.complete and report.members == 3
        ann = store.find_identity(lms.base_url, "ann")
        assert ann is not None and ann.username.startswith("campus-")
        with Gradebook(gradebook) as gb:
            assert {s.lms_user_id for s in gb.students} == {"ann", "bob", "cy"}
            names = sorted(s.id for s in gb.students)

        # students launched too (their AGS endpoints stored), their grades go out
        for u in ("ann", "bob", "cy"):
            ident = store.find_identity(lms.base_url, u)
            store.save_services(username=ident.username, course="c1", platform="campus", issuer=lms.base_url,
                                client_id="tool-9", deployment_id="d1", context_id="ctx1", subject=u, role="student",
                                ags={"lineitems": lms.lineitems_url("ctx1"), "scope": []}, nrps=None,
                                resource_link=None)
        build_gradebook(gradebook, students=[], assignment_names=["ps1"])
        with Gradebook(gradebook) as gb:  # each student submits and gets autograded
            for sid in names:
                gb.add_submission("ps1", sid)
        grades = load_grades(db_url=gradebook)
        with outbox_sessions(settings)() as s:
            assert enqueue_changes(s, "c1", grades.long, dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) == 3
        sender = make_sender(settings)
        assert await sender.send_due(pause=lambda: True) == {}  # a deadline started: every row waits
        assert lms.results == {}
        asked: list[int] = []
        assert await sender.send_due(pause=lambda: asked.append(1) or len(asked) > 1) == {"sent": 1}
        out = await sender.send_due()
        assert out == {"sent": 2}
        assert {k[2] for k in lms.results} == {"ann", "bob", "cy"}
        assert all(r["gradingProgress"] == "PendingManual" for r in lms.results.values())
    finally:
        store.dispose()
        server.stop()
        await server.close_all_connections()


def remote_lms_settings(tmp_path, state):  # noqa: ANN001, ANN201
    """Settings with one LMS registered (not reachable: nothing is sent) and the outbox created."""
    platform = SimpleNamespace(name="campus", issuer="https://lms.example", token_url="https://lms.example/token",
                               auth_login_url="https://lms.example/auth", jwks_url="https://lms.example/jwks")
    settings = SimpleNamespace(state_dir=state, local=False, hub=SimpleNamespace(db_url=None),
                               auth=SimpleNamespace(lti=SimpleNamespace(platforms=[platform], local_lms=False)),
                               grading_db_url=lambda: f"sqlite:///{tmp_path / 'grading.sqlite'}")
    Base.metadata.create_all(outbox_sessions(settings).kw["bind"])
    return settings


async def test_background_sync_waits_for_the_hubs_tool_key(tmp_path, monkeypatch):
    """Started before the hub made its key, the timer keeps running and builds its sender once the
    key exists; with no LMS registered it starts nothing."""
    from coursehub.grading.lms import runtime

    monkeypatch.setattr(runtime, "_started", {})
    state = tmp_path / "state"
    settings = remote_lms_settings(tmp_path, state)
    built = []
    real = runtime.make_sender
    monkeypatch.setattr(runtime, "make_sender", lambda s: built.append(real(s)) or built[-1])
    assert runtime.start_background_sync(settings, every=3600)
    timer = runtime._started[settings.grading_db_url()]
    try:
        await timer.callback()  # no key yet: waits, does not stop the timer
        assert built == [] and timer.is_running()
        load_or_create_key_pair(tool_key_path(state))
        await timer.callback()
        await timer.callback()
        assert len(built) == 1  # built once, then reused
    finally:
        timer.stop()

    none = SimpleNamespace(**{**vars(settings), "auth": SimpleNamespace(lti=SimpleNamespace(platforms=[], local_lms=False)),
                              "grading_db_url": lambda: "sqlite:///" + str(tmp_path / "other.sqlite")})
    assert not runtime.start_background_sync(none)


async def test_background_sync_waits_while_a_deadline_presses_at_most_max_deferral(tmp_path, monkeypatch):
    """Above RUSH_RATE submissions per second both timers skip their turn (no sender is built, no
    row is queued); below it, or once MAX_DEFERRAL has passed, they run."""
    from coursehub.grading.lms import runtime

    monkeypatch.setattr(runtime, "_started", {})
    state = tmp_path / "state"
    load_or_create_key_pair(tool_key_path(state))
    settings = remote_lms_settings(tmp_path, state)
    built, windows = [], []
    real = runtime.make_sender
    monkeypatch.setattr(runtime, "make_sender", lambda s: built.append(real(s)) or built[-1])
    rate = [runtime.RUSH_RATE * 4]
    clock = [1000.0]
    monkeypatch.setattr(runtime, "_clock", lambda: clock[0])

    def submission_rate(window: float) -> float:
        windows.append(window)
        return rate[0]

    assert runtime.start_background_sync(settings, every=3600, submission_rate=submission_rate)
    timer = runtime._started[settings.grading_db_url()]
    try:
        await timer.callback()
        clock[0] += runtime.MAX_DEFERRAL - 1
        await timer.callback()
        assert built == [] and timer.is_running()  # a deadline: nothing done yet
        assert windows and set(windows) == {runtime.RUSH_WINDOW}
        clock[0] += 2  # waited MAX_DEFERRAL: runs although the deadline still presses
        await timer.callback()
        assert len(built) == 1
        rate[0] = runtime.RUSH_RATE - 0.1  # quiet again: runs every turn, and a new rush waits again
        await timer.callback()
        rate[0] = runtime.RUSH_RATE
        built.clear()
        monkeypatch.setattr(runtime, "make_sender", lambda s: built.append(s))
        await timer.callback()
        assert built == []
    finally:
        timer.stop()
