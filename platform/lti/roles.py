"""LTI role URIs -> course roles (instructor, ta, student).

Only context (membership) roles count: an institution role such as "staff" says nothing about
this course. Several roles give the strongest one. A launch with no membership role is a
student's: the least the person can be in a course that sent them here.
"""

from __future__ import annotations

from collections.abc import Iterable

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"

_BY_NAME = {
    "Administrator": "instructor",
    "ContentDeveloper": "instructor",
    "Instructor": "instructor",
    "Learner": "student",
    "Mentor": "ta",
    "Manager": "instructor",
}
_SUB_ROLES = {
    "TeachingAssistant": "ta",
    "Grader": "ta",
    "TeachingAssistantSection": "ta",
    "TeachingAssistantOffering": "ta",
    "TeachingAssistantGroup": "ta",
}
_RANK = {"student": 0, "ta": 1, "instructor": 2}


def _one(uri: str) -> str | None:
    if uri.startswith(MEMBERSHIP + "/") and "#" in uri:  # sub-role, e.g. .../membership/Instructor#TeachingAssistant
        principal, sub = uri[len(MEMBERSHIP) + 1:].split("#", 1)
        return _SUB_ROLES.get(sub) or _BY_NAME.get(principal)
    if uri.startswith(MEMBERSHIP + "#"):
        return _BY_NAME.get(uri.split("#", 1)[1])
    if "/" not in uri and "#" not in uri:  # simple names are allowed for context roles
        return _BY_NAME.get(uri) or _SUB_ROLES.get(uri)
    return None


def course_role(roles: Iterable[str]) -> str:
    """The course role for a launch's roles claim."""
    found = [r for r in (_one(u) for u in roles if isinstance(u, str)) if r]
    return max(found, key=_RANK.__getitem__) if found else "student"
