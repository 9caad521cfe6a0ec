"""Names reach nbgrader's Student table from launches and rosters (kept current); the course round
makes every assignment's line item from course.yaml; the service may change only course groups."""

from __future__ import annotations

from types import SimpleNamespace

from fakelms.ags import AgsState, ags_handlers
from nbgrader.api import Gradebook
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from coursehub.grading.gradebook import course_gradebook_url
from coursehub.grading.lms.models import Base
from coursehub.grading.lms.runtime import course_round, outbox_sessions, sync_course_names
from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path
from coursehub.platform.lti.store import LtiStore

from .conftest import serve_hub_records_lms

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def assignment(id_: str, title: str, points: float | None):
    return SimpleNamespace(id=id_, title=title, points=points)


def launched(store, lms_url, username, sub, role="student", name="", email=""):
    store.claim_identity(lms_url, sub, [username], display_name=name, email=email)
    store.save_services(username=username, course="c1", platform="campus", issuer=lms_url, client_id="tool-9",
                        deployment_id="d1", context_id="ctx1", subject=sub, role=role,
                        ags={"lineitems": f"{lms_url}/ctx/ctx1/lineitems", "scope": []},
                        nrps={"context_memberships_url": f"{lms_url}/ctx/ctx1/memberships"}, resource_link=None)


async def test_names_from_launches_and_the_roster_and_lineitems_from_course_yaml(tmp_path, monkeypatch):
    lms, server, settings = serve_hub_records_lms(tmp_path)
    state = settings.state_dir
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    store = LtiStore(f"sqlite:///{state / 'lti.sqlite'}")
    try:
        launched(store, lms.base_url, "campus-ann", "ann", name="Ann Marie Lee", email="ann@x.example")
        launched(store, lms.base_url, "campus-prof", "prof", role="instructor", name="Pat Prof")
        assert sync_course_names(settings, "c1") == 1
        url = course_gradebook_url(settings, "c1")
        with Gradebook(url) as gb:
            ann = gb.find_student("campus-ann")
            assert (ann.first_name, ann.last_name, ann.email, ann.lms_user_id) == (
                "Ann Marie", "Lee", "ann@x.example", "ann")
            assert [s.id for s in gb.students] == ["campus-ann"], "staff are not gradebook students"
        assert sync_course_names(settings, "c1") == 0  # nothing changed, nothing written

        # the roster has the name parts; the next launch brings a new email: both kept current
        lms.members["ctx1"] = [{"user_id": "ann", "roles": [LEARNER], "given_name": "Ann", "family_name": "Marie Lee",
                                "name": "Ann Marie Lee", "email": "ann@x.example"}]
        course = SimpleNamespace(id="c1", assignments=[assignment("ps1", "Problem set 1", 10),
                                                       assignment("ps2", "", 5), assignment("draft", "", None)])
        done = await course_round(settings, course)
        assert done["roster"][0].members == 1 and done["lineitems"] == {"ps1": "ok", "ps2": "ok"}
        launched(store, lms.base_url, "campus-ann", "ann", email="ann.lee@x.example")
        sync_course_names(settings, "c1")
        with Gradebook(url) as gb:
            ann = gb.find_student("campus-ann")
            assert (ann.first_name, ann.last_name, ann.email) == ("Ann", "Marie Lee", "ann@x.example")
        items = sorted((i["resourceId"], i["label"], i["scoreMaximum"]) for i in lms.lineitems["ctx1"].values())
        assert items == [("ps1", "Problem set 1", 10.0), ("ps2", "ps2", 5.0)]
    finally:
        store.dispose()
        server.stop()
        await server.close_all_connections()


def test_the_grading_service_may_change_only_course_groups(tmp_path):
    from coursehub.grading.service.hub import course_group_scopes

    catalog = [SimpleNamespace(id="c1"), SimpleNamespace(id="c2")]
    scopes = course_group_scopes(catalog)
    assert "groups!group=course:c1:student" in scopes and "groups!group=course:c2:instructor" in scopes
    assert len(scopes) == 6 and all(s.startswith("groups!group=course:") for s in scopes)

    from traitlets.config import Config

    from coursehub.grading.service.hub import configure_grading
    from coursehub.platform.courses import load_catalog
    from coursehub.platform.settings import load_settings

    settings = load_settings(None)
    services, roles = [], []
    configure_grading(Config(), settings, load_catalog(settings.courses_dir), services, roles)
    (role,) = [r for r in roles if r["name"] == "coursehub-grading"]
    assert "groups!group=course:demo-101:ta" in role["scopes"]
    assert not any(s.startswith(("admin", "groups")) and "!group=course:" not in s for s in role["scopes"])


async def test_the_service_timers_send_progress_names_and_lineitems(tmp_path, monkeypatch):
    """What the grading service starts: the send timer queues a submission as Submitted/Pending and the
    launch's name into the gradebook; the roster timer makes the course's line items."""
    import datetime as dt

    from coursehub.grading.lms import runtime
    from coursehub.grading.models import Base as ExchangeBase
    from coursehub.grading.models import Submission

    monkeypatch.setattr(runtime, "_started", {})
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    state, courses = tmp_path / "state", tmp_path / "courses"
    (courses / "c1" / "source" / "ps1").mkdir(parents=True)
    (courses / "c1" / "source" / "ps1" / "p1.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    (courses / "c1" / "course.yaml").write_text(
        "id: c1\ntitle: Course one\nassignments:\n  - id: ps1\n    title: Problem set 1\n    points: 10\n")
    (state / "course-dirs" / "c1").mkdir(parents=True)
    key = load_or_create_key_pair(tool_key_path(state))
    lms = AgsState(tool_jwk=key.public_jwk(), client_id="tool-9")
    sock, port = bind_unused_port()
    server = HTTPServer(web.Application(ags_handlers(lms)))
    server.add_sockets([sock])
    lms.base_url = f"http://127.0.0.1:{port}"
    platform = SimpleNamespace(name="campus", issuer=lms.base_url, token_url=lms.token_url(),
                               auth_login_url=f"{lms.base_url}/auth", jwks_url=f"{lms.base_url}/jwks")
    settings = SimpleNamespace(state_dir=state, local=False, hub=SimpleNamespace(db_url=None), courses_dir=courses,
                               auth=SimpleNamespace(lti=SimpleNamespace(platforms=[platform], local_lms=False)),
                               grading=SimpleNamespace(lms=SimpleNamespace(send_interval_seconds=3600,
                                                                           roster_interval_seconds=3600,
                                                                           student_grace_days=14)),
                               grading_db_url=lambda: f"sqlite:///{tmp_path / 'grading.sqlite'}")
    engine = outbox_sessions(settings).kw["bind"]
    Base.metadata.create_all(engine)
    ExchangeBase.metadata.create_all(engine)
    store = LtiStore(f"sqlite:///{state / 'lti.sqlite'}")
    timers = []
    try:
        launched(store, lms.base_url, "campus-ann", "ann", name="Ann Lee", email="ann@x.example")
        with outbox_sessions(settings)() as s:
            s.add(Submission(course_id="c1", assignment_id="ps1", student_id="campus-ann",
                             submitted_at=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC), timestamp="t", upload_id="u1",
                             blob_path="x", sha256="0" * 64, size=1, notebooks=["p1"], secret="s"))
            s.commit()
        assert runtime.start_background_sync(settings)
        send, rounds = runtime._started[settings.grading_db_url()], runtime._started[
            settings.grading_db_url() + " roster"]
        timers = [send, rounds]
        assert send.callback_time == rounds.callback_time == 3600 * 1000
        await rounds.callback()
        assert [(i["resourceId"], i["label"], i["scoreMaximum"]) for i in lms.lineitems["ctx1"].values()] == [
            ("ps1", "Problem set 1", 10.0)]
        await send.callback()
        ((_ctx, _n, user), result), = lms.results.items()
        assert user == "ann" and (result["activityProgress"], result["gradingProgress"]) == ("Submitted", "Pending")
        with Gradebook(course_gradebook_url(settings, "c1")) as gb:
            ann = gb.find_student("campus-ann")
            assert (ann.first_name, ann.last_name, ann.lms_user_id) == ("Ann", "Lee", "ann")
        assert len(lms.lineitems["ctx1"]) == 1
    finally:
        for t in timers:
            t.stop()
        store.dispose()
        server.stop()
        await server.close_all_connections()


def test_a_round_on_demand_names_unknown_courses(capsys):
    from coursehub.grading.lms.runtime import main

    assert main(["no-such-course"]) == 1
    assert "no-such-course: no such course" in capsys.readouterr().out
