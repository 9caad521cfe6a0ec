"""Course roles and groups have one home (coursehub.platform.groups); the hub side and the grading
side read the same groups the same way."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from coursehub.grading.lms.sources import StoreServices
from coursehub.grading.service.core import Caller
from coursehub.grading.service.hub import staff_courses
from coursehub.platform.groups import (
    COURSE_ROLES,
    STAFF_ROLES,
    course_group,
    course_group_prefix,
    courses_of,
    is_staff,
    parse_course_group,
    role_rank,
    staff_courses_of,
)
from coursehub.platform.lti.roles import course_role

GROUPS = ["course:a-1:student", "course:b:ta", "course:b:instructor", "course:c:instructor",
          "other", "course:x:admin", "course:y:student:extra", "courses:z:ta"]


@pytest.mark.parametrize("role", COURSE_ROLES)
def test_group_names_round_trip(role):
    name = course_group("demo-101", role)
    assert name.startswith(course_group_prefix("demo-101"))
    assert parse_course_group(name) == ("demo-101", role)


@pytest.mark.parametrize("name", ["course:x:admin", "course:y:student:extra", "courses:z:ta", "course:a",
                                  "student", ""])
def test_other_groups_are_not_course_roles(name):
    assert parse_course_group(name) is None


def test_staff_and_membership_from_groups():
    assert courses_of(GROUPS) == {"a-1": {"student"}, "b": {"ta", "instructor"}, "c": {"instructor"}}
    assert staff_courses_of(GROUPS) == {"b", "c"}
    assert STAFF_ROLES == {"instructor", "ta"}
    assert is_staff({"ta"}) and is_staff(["instructor", "student"]) and not is_staff({"student"})
    assert role_rank("instructor") > role_rank("ta") > role_rank("student") == role_rank("unknown")


def test_hub_and_grading_sides_agree_on_staff():
    """The spawner's staff list, the grading service's caller and the group module say the same."""
    spawner = SimpleNamespace(user=SimpleNamespace(groups=[SimpleNamespace(name=g) for g in GROUPS]))
    assert staff_courses(spawner) == "b,c"
    caller = Caller("u", {c: frozenset(r) for c, r in courses_of(GROUPS).items()})
    assert [c for c in ("a-1", "b", "c", "x") if caller.is_staff(c)] == ["b", "c"]


def test_lti_role_rank_is_the_group_rank():
    """A launch with several context roles gets the strongest one, by the same rank as everywhere."""
    base = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
    assert course_role([base + "Learner", base + "Instructor"]) == "instructor"
    assert course_role([base + "Learner", "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]) == "ta"


class _Store:
    def __init__(self, rows):
        self.rows = rows

    def services(self, username=None, course=None):
        return [r for r in self.rows if r["course"] == course]


def test_roster_source_prefers_the_stronger_role():
    """Of two NRPS launches in one context, the instructor's wins over a newer student's."""
    platform = SimpleNamespace(issuer="https://lms", name="lms")
    row = {"platform": "lms", "issuer": "https://lms", "client_id": "c", "course": "demo-101", "context_id": "ctx",
           "subject": "s", "nrps": {"context_memberships_url": "https://lms/nrps"}, "ags": {}}
    rows = [dict(row, username="teacher", role="instructor", updated_at=1),
            dict(row, username="student", role="student", updated_at=2)]
    (chosen,) = StoreServices(_Store(rows), {"lms": platform}).for_course("demo-101")
    assert chosen.username == "teacher"
