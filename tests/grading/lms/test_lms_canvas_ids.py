"""Canvas's numeric user id: the tool configuration asks for it, a launch's custom claim brings it,
and it (not the LTI `sub`) becomes the student's LMS id in nbgrader's Student table, which the
Canvas gradebook export matches students by; the roster does not overwrite it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from nbgrader.api import Gradebook

from coursehub.grading.gradebook import course_gradebook_url
from coursehub.grading.lms.runtime import sync_course_names, sync_course_roster
from coursehub.platform.lti.platform_ids import canvas_user_id
from coursehub.platform.lti.store import LtiStore
from coursehub.platform.lti.tool_config import registration_request, tool_configuration

from .conftest import serve_hub_records_lms
from .test_lms_names_and_rounds import LEARNER, launched


def test_the_canvas_configuration_asks_for_the_canvas_user_id():
    config = tool_configuration("https://hub.example/hub/", "coursehub", "d")
    assert config["custom_fields"] == {"canvas_user_id": "$Canvas.user.id"}
    tool = registration_request("https://hub.example/hub/", "coursehub", "d")
    assert tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]["custom_parameters"] == {
        "canvas_user_id": "$Canvas.user.id"}


@pytest.mark.parametrize(("custom", "expected"), [
    ({"canvas_user_id": "4711"}, "4711"),
    ({"canvas_user_id": 4711}, "4711"),
    ({"canvas_user_id": "$Canvas.user.id"}, None),  # an LMS that does not know the variable
    ({"canvas_user_id": "12 OR 1=1"}, None),
    ({"canvas_user_id": "1" * 21}, None),
    ({"canvas_user_id": "-3"}, None),
    ({"canvas_user_id": True}, None),
    ({"canvas_user_id": ["4711"]}, None),
    ({}, None),
    ("not a dict", None),
])
def test_only_a_plain_number_is_taken(custom, expected):
    assert canvas_user_id(custom) == expected


def test_store_keeps_the_newest_id_per_person(tmp_path):
    store = LtiStore(f"sqlite:///{tmp_path / 'lti.sqlite'}")
    try:
        store.save_platform_user_id("https://canvas.example", "sub-1", "17")
        store.save_platform_user_id("https://canvas.example", "sub-1", "18")
        store.save_platform_user_id("https://other.example", "sub-1", "99")
        assert store.platform_user_ids("https://canvas.example") == {("https://canvas.example", "sub-1"): "18"}
        assert len(store.platform_user_ids()) == 2
        with pytest.raises(ValueError, match="user_id"):
            store.save_platform_user_id("https://canvas.example", "sub-1", "9" * 65)
    finally:
        store.dispose()


async def test_canvas_id_reaches_the_gradebook_and_survives_the_roster(tmp_path, monkeypatch):
    lms, server, settings = serve_hub_records_lms(tmp_path)
    state = settings.state_dir
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    store = LtiStore(f"sqlite:///{state / 'lti.sqlite'}")
    try:
        launched(store, lms.base_url, "campus-ann", "ann", name="Ann Lee")
        store.save_platform_user_id(lms.base_url, "ann", "4711")  # what the launch handler does
        launched(store, lms.base_url, "campus-bo", "bo", name="Bo Park")  # no Canvas id: the sub
        assert sync_course_names(settings, "c1") == 2
        url = course_gradebook_url(settings, "c1")
        with Gradebook(url) as gb:
            assert {s.id: s.lms_user_id for s in gb.students} == {"campus-ann": "4711", "campus-bo": "bo"}

        lms.members["ctx1"] = [{"user_id": u, "roles": [LEARNER], "name": n} for u, n in
                               (("ann", "Ann Lee"), ("bo", "Bo Park"))]
        groups = SimpleNamespace(add_members=lambda *a: None)
        (report,) = await sync_course_roster(settings, "c1", url, groups=groups)
        assert report.members == 2
        with Gradebook(url) as gb:  # the roster's own write keeps the Canvas id
            assert {s.id: s.lms_user_id for s in gb.students} == {"campus-ann": "4711", "campus-bo": "bo"}
        assert sync_course_names(settings, "c1") == 0  # and the merge of both sources agrees
    finally:
        store.dispose()
        server.stop()
