"""Course profiles for KubeSpawner: one profile per course, built from the course's `environment`
(the same data the local spawner uses), visible only to members of that course's groups.

A profile's slug is the course id, so an LTI launch for a course spawns with
`user_options={"profile": "<course-id>"}` (`/hub/spawn?opt-profile=<course-id>` on JupyterHub 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coursehub.platform.courses import Course
from coursehub.platform.profiles import CourseProfile, profile_for

#: Label put on every user pod naming the course it runs for.
COURSE_LABEL = "coursehub.io/course"
#: Profile key listing the groups allowed to use a profile (KubeSpawner ignores unknown keys).
ALLOWED_GROUPS_KEY = "allowed_groups"


def kubespawner_profile(profile: CourseProfile) -> dict[str, Any]:
    """A `CourseProfile` (platform/profiles.py, shared with the local spawner) as a KubeSpawner
    profile: image, CPU/memory guarantees and limits, storage, environment.

    Memory goes to KubeSpawner in bytes: JupyterHub's ByteSpecification does not accept the
    Kubernetes suffixes (`Mi`, `Gi`) that course.yaml uses.
    """
    override: dict[str, Any] = {
        "image": profile.image,
        "cpu_guarantee": profile.cpu_guarantee,
        "cpu_limit": profile.cpu_limit,
        "mem_guarantee": profile.mem_guarantee,
        "mem_limit": profile.mem_limit,
        "storage_capacity": profile.storage,
        "default_url": profile.default_url,
        "extra_labels": {COURSE_LABEL: profile.slug},
    }
    if profile.env:
        override["environment"] = dict(profile.env)
    return {
        "display_name": profile.display_name,
        "slug": profile.slug,
        "description": profile.description or f"The environment for {profile.display_name}",
        "kubespawner_override": override,
        ALLOWED_GROUPS_KEY: list(profile.groups),
    }


def course_profile(course: Course) -> dict[str, Any]:
    return kubespawner_profile(profile_for(course))


def course_profile_list(courses: Iterable[Course]) -> list[dict[str, Any]]:
    """All course profiles, in a stable order (by course id)."""
    return [course_profile(c) for c in sorted(courses, key=lambda c: c.id)]


def visible_profiles(
    profiles: Iterable[dict[str, Any]], groups: Iterable[str], *, admin: bool = False, admin_sees_all: bool = False
) -> list[dict[str, Any]]:
    """The profiles a user with `groups` may choose from.

    A profile without `allowed_groups` is offered to everyone; one with an empty list to nobody.
    Admins see all profiles only when `admin_sees_all` is set (operators debugging a course).
    """
    member_of = set(groups)
    shown = []
    for profile in profiles:
        allowed = profile.get(ALLOWED_GROUPS_KEY)
        if allowed is None or (admin and admin_sees_all) or member_of.intersection(allowed):
            shown.append(profile)
    return shown
