"""LTI role URIs -> course roles (instructor, ta, student), or "observer": no course role at all.

Only context (membership) roles decide: an institution role such as "Faculty" or a system role
such as "Administrator" says nothing about this course. Several roles give the strongest one.

Observers are never staff: Canvas sends `membership#Mentor` for observers (parents), other
LMSes `membership/Manager#Observer` or `#ExternalObserver`. A launch whose only context roles are
those gets OBSERVER, which the launch refuses with a page that explains; coursehub has no
read-only role scoped to mentored students (`role_scope_mentor`) yet.

A launch with no context role at all is a student's (the least a person can be in a course
that sent them here), unless its institution roles say observer or mentor. A test user (Canvas's
"student view", `lti/system/person#TestUser`) is never more than a student.
See docs/operators/lms-registration.md ("Roles") for the mapping per LMS.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..groups import ROLE_RANK

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"
#: Not a course role: the launch is refused (see the module docstring).
OBSERVER = "observer"

_BY_NAME = {
    "Administrator": "instructor",
    "ContentDeveloper": "instructor",
    "Instructor": "instructor",
    "Learner": "student",
    "Member": "student",
    "Mentor": OBSERVER,
    "Manager": "instructor",
}
_SUB_ROLES = {
    "TeachingAssistant": "ta",
    "Grader": "ta",
    "TeachingAssistantSection": "ta",
    "TeachingAssistantOffering": "ta",
    "TeachingAssistantGroup": "ta",
    "TeachingAssistantSectionAssociation": "ta",
    "TeachingAssistantTemplate": "ta",
    "Observer": OBSERVER,
    "ExternalObserver": OBSERVER,
}
_RANK = {OBSERVER: -1, **ROLE_RANK}
_OBSERVING_INSTITUTION_ROLES = {"Mentor", "Observer"}


def _one(uri: str) -> str | None:
    if uri.startswith(MEMBERSHIP + "/") and "#" in uri:  # sub-role, e.g. .../membership/Instructor#TeachingAssistant
        principal, sub = uri[len(MEMBERSHIP) + 1:].split("#", 1)
        if _BY_NAME.get(principal) == OBSERVER:  # every kind of mentor observes
            return OBSERVER
        return _SUB_ROLES.get(sub) or _BY_NAME.get(principal)
    if uri.startswith(MEMBERSHIP + "#"):
        return _BY_NAME.get(uri.split("#", 1)[1])
    if "/" not in uri and "#" not in uri and ":" not in uri:  # simple names are allowed for context roles
        return _BY_NAME.get(uri) or _SUB_ROLES.get(uri)
    return None


def course_role(roles: Iterable[object]) -> str:
    """The course role for a launch's (or a roster member's) roles claim; OBSERVER for no role."""
    uris = [u for u in roles if isinstance(u, str)]
    found = [r for r in (_one(u) for u in uris) if r]
    if found:
        role = max(found, key=_RANK.__getitem__)
    elif any(u.startswith(INSTITUTION + "#") and u.split("#", 1)[1] in _OBSERVING_INSTITUTION_ROLES for u in uris):
        role = OBSERVER
    else:
        role = "student"
    if TEST_USER in uris and _RANK[role] > _RANK["student"]:
        role = "student"
    return role


def is_course_role(role: str) -> bool:
    """False for OBSERVER: such a launch gets no course group and no session."""
    return role != OBSERVER
