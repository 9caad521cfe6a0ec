"""Course roles and the JupyterHub groups that hold them: the one place that knows both.

A person's role in a course is membership of the hub group `course:<course id>:<role>`, with
`<role>` one of `COURSE_ROLES`. Everything that names, reads or ranks those groups (the
authenticators, the spawners, the grading service, the roster sync) uses the functions here, so
the group format and the meaning of "staff" cannot drift apart between the hub and grading sides.

Membership changes are additive: JupyterHub's `manage_groups` replaces a user's groups with
whatever the authenticator returns, and a launch from one course must not drop the person's other
courses, so authenticators return the union of the groups the user already has and the ones this
login grants (`merged_groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

#: The course roles, strongest first.
COURSE_ROLES = ("instructor", "ta", "student")
CourseRole = Literal["instructor", "ta", "student"]
#: Roles that teach: they see every submission of the course, release, collect and grade.
STAFF_ROLES = frozenset({"instructor", "ta"})
#: Which role wins when one person holds several (higher is stronger); unknown roles rank 0.
ROLE_RANK: Mapping[str, int] = {"instructor": 2, "ta": 1, "student": 0}

_PREFIX = "course"


def course_group(course_id: str, role: CourseRole) -> str:
    """The hub group holding `course_id`'s members of `role`: 'course:<id>:<role>'."""
    return f"{_PREFIX}:{course_id}:{role}"


def course_group_prefix(course_id: str) -> str:
    """What every group of one course starts with (to select or drop that course's groups)."""
    return f"{_PREFIX}:{course_id}:"


def parse_course_group(name: str) -> tuple[str, CourseRole] | None:
    """'course:demo-101:student' -> ('demo-101', 'student'); anything else -> None."""
    parts = name.split(":")
    if len(parts) == 3 and parts[0] == _PREFIX and parts[2] in COURSE_ROLES:
        return parts[1], parts[2]  # type: ignore[return-value]
    return None


def role_rank(role: str) -> int:
    """How strong a role is, for picking one of several (an unknown role ranks like a student)."""
    return ROLE_RANK.get(role, 0)


def is_staff(roles: Iterable[str]) -> bool:
    """True when the roles a person holds in one course include a teaching role."""
    return bool(set(roles) & STAFF_ROLES)


def courses_of(group_names: Iterable[str]) -> dict[str, set[str]]:
    """{course_id: {roles}} from a user's hub group names (other groups are ignored)."""
    out: dict[str, set[str]] = {}
    for name in group_names:
        parsed = parse_course_group(name)
        if parsed:
            out.setdefault(parsed[0], set()).add(parsed[1])
    return out


def staff_courses_of(group_names: Iterable[str]) -> set[str]:
    """Ids of the courses the groups make the user staff of (instructor or TA)."""
    return {course for course, roles in courses_of(group_names).items() if is_staff(roles)}


def existing_groups(handler: Any, username: str) -> set[str]:
    """Group names the hub user `username` has now (empty for a new user)."""
    if handler is None:
        return set()
    user = handler.find_user(username)
    return {g.name for g in user.groups} if user is not None else set()


def merged_groups(handler: Any, username: str, granted: Iterable[str]) -> list[str]:
    """The user's groups after a login: what they had plus what this login grants."""
    return sorted(existing_groups(handler, username) | set(granted))
