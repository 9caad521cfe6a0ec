"""LTI roles -> course roles (observers and mentors never staff), and LMS contexts -> courses when
several platforms are registered (an entry without `platform:` is not a wildcard)."""

from __future__ import annotations

import pytest
import yaml
from traitlets.config import Config

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.auth import configure
from coursehub.platform.courses import (
    AmbiguousLtiContext,
    Catalog,
    Course,
    load_catalog,
    lti_platform_problems,
)
from coursehub.platform.errors import ConfigError
from coursehub.platform.lti.roles import OBSERVER, course_role, is_course_role
from coursehub.platform.settings import load_settings

M = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYS = "http://purl.imsglobal.org/vocab/lis/v2/system/person"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"

ROLES = [
    # observers and mentors: Canvas observers (parents) are Mentor; others send Manager#Observer
    ([f"{M}#Mentor"], OBSERVER),
    (["Mentor"], OBSERVER),
    ([f"{M}/Mentor#Advisor"], OBSERVER),
    ([f"{M}/Mentor#Reviewer"], OBSERVER),
    ([f"{M}/Manager#Observer"], OBSERVER),
    ([f"{M}/Manager#ExternalObserver"], OBSERVER),
    ([f"{M}/Instructor#ExternalObserver"], OBSERVER),
    ([f"{M}#Mentor", f"{INST}#Faculty", f"{SYS}#Administrator"], OBSERVER),
    ([f"{INST}#Observer"], OBSERVER),
    ([f"{INST}#Mentor", f"{INST}#Staff"], OBSERVER),
    # a mentor who is also a member of the course gets that membership, never more
    ([f"{M}#Mentor", f"{M}#Learner"], "student"),
    ([f"{M}/Manager#Observer", f"{M}/Instructor#TeachingAssistant"], "ta"),
    # test users (Canvas's student view) are never staff
    ([TEST_USER, f"{M}#Learner"], "student"),
    ([TEST_USER], "student"),
    ([TEST_USER, f"{M}#Instructor"], "student"),
    # content developers (Canvas designers) build the course: instructor
    ([f"{M}#ContentDeveloper"], "instructor"),
    (["ContentDeveloper"], "instructor"),
    ([f"{M}/ContentDeveloper#ContentExpert"], "instructor"),
    # institution and system roles alone say nothing about this course
    ([f"{INST}#Faculty"], "student"),
    ([f"{INST}#Instructor"], "student"),
    ([f"{INST}#Administrator", f"{SYS}#SysAdmin"], "student"),
    ([f"{SYS}#Administrator"], "student"),
    # ... and do not change what the context role says
    ([f"{SYS}#Administrator", f"{M}#Learner"], "student"),
    ([f"{INST}#Student", f"{M}#Instructor"], "instructor"),
    ([f"{INST}#Faculty", f"{M}/Instructor#TeachingAssistant"], "ta"),
    ([f"{M}/Manager#CourseCoordinator"], "instructor"),
    ([f"{M}#Manager"], "instructor"),
    ([f"{M}#Administrator"], "instructor"),
    ([f"{M}#Member"], "student"),
    (["urn:lti:role:ims/lis/Instructor"], "student"),  # LTI 1.1 names are not LTI 1.3 roles
    ([], "student"),
]


@pytest.mark.parametrize(("roles", "expected"), ROLES, ids=[f"{i}-{r[-1].rsplit('/', 1)[-1] if r else 'none'}"
                                                           for i, (r, _) in enumerate(ROLES)])
def test_role_mapping(roles, expected):
    assert course_role(roles) == expected
    assert is_course_role(course_role(roles)) == (expected != OBSERVER)


def course(cid: str, *lti: dict) -> Course:
    return Course(id=cid, title=cid, lti=list(lti))


def test_entry_without_platform_does_not_match_another_lms():
    cat = Catalog([course("a", {"deployment_id": "d", "context_id": "c"})])
    assert cat.for_lti_context("d", "c", "canvas", registered=1).id == "a"
    with pytest.raises(AmbiguousLtiContext):
        cat.for_lti_context("d", "c", "moodle", registered=2)


def test_explicit_platform_wins_and_duplicates_are_ambiguous():
    cat = Catalog([course("a", {"platform": "canvas", "deployment_id": "d", "context_id": "c"}),
                   course("b", {"platform": "moodle", "deployment_id": "d", "context_id": "c"})])
    assert cat.for_lti_context("d", "c", "canvas", registered=2).id == "a"
    assert cat.for_lti_context("d", "c", "moodle", registered=2).id == "b"
    assert cat.for_lti_context("d", "c", "other", registered=3) is None
    two = Catalog([course("a", {"deployment_id": "d", "context_id": "c"}),
                   course("b", {"deployment_id": "d", "context_id": "c"})])
    with pytest.raises(AmbiguousLtiContext):
        two.for_lti_context("d", "c", "canvas", registered=1)


def test_platform_required_when_several_are_registered():
    cat = Catalog([course("a", {"deployment_id": "d", "context_id": "c"}),
                   course("b", {"platform": "canvas", "deployment_id": "d", "context_id": "x"})])
    assert lti_platform_problems(cat, ["canvas"]) == []
    (problem,) = lti_platform_problems(cat, ["canvas", "moodle"])
    assert problem.key == "lti[0].platform" and "required" in problem.message


def test_catalog_refuses_platformless_entry_shared_with_another_course(tmp_path):
    for cid, entry in (("a", {"deployment_id": "d", "context_id": "c"}),
                       ("b", {"platform": "canvas", "deployment_id": "d", "context_id": "c"})):
        (tmp_path / cid).mkdir()
        (tmp_path / cid / "course.yaml").write_text(yaml.safe_dump({"id": cid, "title": cid, "lti": [entry]}))
    with pytest.raises(ConfigError, match="add `platform:`"):
        load_catalog(tmp_path)


def _platform(name: str) -> dict:
    return {"name": name, "issuer": f"https://{name}.example", "client_ids": ["c"], "deployment_ids": ["d"],
            "auth_login_url": f"https://{name}.example/auth", "jwks_url": f"https://{name}.example/jwks",
            "token_url": f"https://{name}.example/token"}


def test_hub_start_warns_about_a_platformless_entry_with_two_lmses(tmp_path, caplog):
    f = tmp_path / "settings.yaml"
    f.write_text(yaml.safe_dump({"state_dir": str(tmp_path), "auth": {"lti": {
        "platforms": [_platform("canvas"), _platform("moodle")], "local_lms": False}}}))
    cat = Catalog([course("a", {"deployment_id": "d", "context_id": "c"})])
    with caplog.at_level("WARNING"):
        configure(Config(), load_settings(f), cat)
    assert "lti[0].platform: required" in caplog.text
    caplog.clear()
    # the demo course names its platform: fine with the local LMS and another LMS
    with caplog.at_level("WARNING"):
        configure(Config(), load_settings(f), load_catalog(SOURCE_ROOT / "courses"))
    assert "required" not in caplog.text


def test_validate_reports_platformless_entries(tmp_path):
    """What `coursehub validate` and the hub's start use: local mode counts the local LMS page."""
    from coursehub.platform.lti.services import config_problems, platform_names

    f = tmp_path / "settings.yaml"
    cat = Catalog([course("a", {"deployment_id": "d", "context_id": "c"})])
    f.write_text(yaml.safe_dump({"state_dir": str(tmp_path), "auth": {"lti": {"platforms": [_platform("canvas")]}}}))
    assert platform_names(load_settings(f)) == ["canvas", "local-lms"]
    assert [p.key for p in config_problems(load_settings(f), cat)] == ["lti[0].platform"]
    f.write_text(yaml.safe_dump({"state_dir": str(tmp_path), "auth": {"lti": {
        "platforms": [_platform("canvas")], "local_lms": False}}}))
    assert config_problems(load_settings(f), cat) == []
