"""Identities, the LTI store (nonces, services) and roles/targets mapping."""

from __future__ import annotations

import time

import pytest

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_course
from coursehub.platform.lti.identity import username_candidates
from coursehub.platform.lti.roles import course_role
from coursehub.platform.lti.store import LtiStore
from coursehub.platform.lti.targets import Target, open_path, resolve_target

DEMO = load_course(SOURCE_ROOT / "courses" / "demo-101")
M = "http://purl.imsglobal.org/vocab/lis/v2/membership"


def test_usernames_stable_distinct_and_not_personal():
    a = username_candidates("canvas", "https://canvas.example", "42")
    assert a == username_candidates("canvas", "https://canvas.example", "42")
    assert a[0] != username_candidates("canvas", "https://other.example", "42")[0]
    assert a[0] != username_candidates("canvas", "https://canvas.example", "43")[0]
    assert a[0].startswith("canvas-") and len(a[0]) == len("canvas-") + 10
    assert username_candidates("Moodle @ Uni!", "i", "s")[0].startswith("moodle-uni-")


def test_identity_collision_takes_a_longer_name(store):
    first = username_candidates("lms", "iss", "alice")
    store.claim_identity("iss", "someone-else", [first[0]])  # force the short name to be taken
    ident = store.claim_identity("iss", "alice", first, display_name="Alice", email="a@x")
    assert ident.username == first[1]
    again = store.claim_identity("iss", "alice", first)
    assert again.username == first[1] and again.display_name == "Alice"  # kept when not resent


def test_nonces_single_use_expire_and_survive_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'lti.sqlite'}"
    s1 = LtiStore(url)
    s1.issue_nonce("a", 60)
    s1.issue_nonce("old", -1)
    s1.dispose()
    s2 = LtiStore(url)  # a hub restart
    assert s2.consume_nonce("a") is True
    assert s2.consume_nonce("a") is False
    assert s2.consume_nonce("old") is False
    assert s2.consume_nonce("never-issued") is False
    s2.dispose()


def test_services_upsert_keeps_services_a_later_launch_lacks(store):
    ags = {"lineitems": "https://lms/li", "lineitem": "https://lms/li/1", "scope": ["s"]}
    common = dict(username="u", course="demo-101", platform="p", issuer="i", client_id="c", deployment_id="d",
                  context_id="ctx", subject="s", role="student")
    store.save_services(**common, ags=ags, nrps={"context_memberships_url": "https://lms/m"},
                        resource_link={"id": "rl1", "title": "PS1"})
    store.save_services(**common, ags=None, nrps=None, resource_link={"id": "rl2"})
    (row,) = store.services("u", "demo-101")
    assert row["ags"] == ags and row["nrps"]["context_memberships_url"] == "https://lms/m"
    assert set(row["resource_links"]) == {"rl1", "rl2"}
    assert row["resource_links"]["rl1"]["lineitem"] == "https://lms/li/1"
    assert row["updated_at"] <= time.time()


@pytest.mark.parametrize(("roles", "expected"), [
    ([f"{M}#Instructor"], "instructor"),
    ([f"{M}#Learner"], "student"),
    ([f"{M}/Instructor#TeachingAssistant"], "ta"),
    ([f"{M}#Learner", f"{M}/Instructor#TeachingAssistant"], "ta"),
    ([f"{M}#Administrator"], "instructor"),
    (["Instructor"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"], "student"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"], "student"),
    ([], "student"),
    ([None, 3], "student"),
])
def test_roles(roles, expected):
    assert course_role(roles) == expected


@pytest.mark.parametrize(("custom", "uri", "expected"), [
    ({"assignment": "ps1"}, "", Target("assignment", "ps1")),
    ({}, "https://hub/hub/coursehub/open?assignment=ps1", Target("assignment", "ps1")),
    ({"textbook": "01-welcome"}, "", Target("textbook", "01-welcome")),
    ({"textbook": "01-welcome.ipynb"}, "", Target("textbook", "01-welcome")),
    ({"assignment": "nope"}, "", Target("course")),
    ({"textbook": "../../etc/passwd"}, "", Target("course")),
    ({"assignment": ["ps1"]}, "", Target("course")),
    ({}, "https://evil.example/?next=https://evil.example", Target("course")),
])
def test_targets(custom, uri, expected):
    assert resolve_target(DEMO, custom, uri) == expected


def test_open_path_stays_on_the_hub():
    assert open_path("/hub/", "demo-101", Target("assignment", "ps1")) == \
        "/hub/coursehub/open?course=demo-101&assignment=ps1"
    assert open_path("/hub/", "demo-101", Target("course")) == "/hub/coursehub/open?course=demo-101"


def test_services_api_for_other_areas(tmp_path):
    import yaml

    from coursehub.platform.lti import services
    from coursehub.platform.settings import load_settings

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"state_dir": str(tmp_path), "auth": {"lti": {"platforms": [{
        "name": "canvas", "issuer": "https://canvas.example", "client_ids": ["c"], "deployment_ids": ["d"],
        "auth_login_url": "https://canvas.example/auth", "jwks_url": "https://canvas.example/jwks",
        "token_url": "https://canvas.example/token"}]}}}))
    settings = load_settings(f)
    assert services.store_url(settings) == f"sqlite:///{tmp_path / 'lti.sqlite'}"
    regs = services.registrations(settings)
    assert regs["canvas"].token_url == "https://canvas.example/token" and "local-lms" in regs
    key = services.tool_key(settings)
    assert services.tool_key(settings).kid == key.kid  # generated once, then loaded
    store = services.open_store(settings)
    try:
        assert services.launch_services(store, "nobody", "demo-101") is None
        store.save_services(username="u", course="demo-101", platform="canvas", issuer="https://canvas.example",
                            client_id="c", deployment_id="d", context_id="ctx", subject="42", role="student",
                            ags={"lineitems": "https://canvas.example/li"}, nrps=None, resource_link=None)
        assert services.launch_services(store, "u", "demo-101")["ags"]["lineitems"] == "https://canvas.example/li"
        assert [r["username"] for r in services.course_services(store, "demo-101")] == ["u"]
    finally:
        store.dispose()
