"""Course profiles for KubeSpawner: one profile per course, built from the course's `environment`
(the same data the local spawner uses), visible only to members of that course's groups.

A profile's slug is the course id, so an LTI launch for a course spawns with
`user_options={"profile": "<course-id>"}` (`/hub/spawn?opt-profile=<course-id>` on JupyterHub 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coursehub.platform.courses import Course
from coursehub.platform.environments_data import volume_name
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


def data_volumes(course: Course) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volumes, volume mounts) for the course's volume datasets (course.yaml `data:`), keyed the way
    z2jh keys `singleuser.storage` (dicts): KubeSpawner merges a profile's dicts into those, so the
    home volume stays. Claims and mounts are read-only. Folder datasets are local-only (see
    `local_only_data`)."""
    volumes: dict[str, Any] = {}
    mounts: dict[str, Any] = {}
    for i, d in enumerate(course.data):
        if d.volume is None:
            continue
        name = volume_name(i, d)
        volumes[f"coursehub-{name}"] = {"name": name, "persistentVolumeClaim": {"claimName": d.volume.claim,
                                                                                "readOnly": True}}
        mount = {"name": name, "mountPath": str(d.mount_path), "readOnly": True}
        if d.volume.sub_path:
            mount["subPath"] = d.volume.sub_path
        mounts[f"coursehub-{name}"] = mount
    return volumes, mounts


def local_only_data(course: Course) -> list[str]:
    """Names of the course's folder datasets, which Kubernetes pods don't get (give them a volume)."""
    return [d.name for d in course.data if d.volume is None]


def course_profile(course: Course) -> dict[str, Any]:
    profile = kubespawner_profile(profile_for(course))
    volumes, mounts = data_volumes(course)
    if volumes:
        profile["kubespawner_override"].update(volumes=volumes, volume_mounts=mounts)
    return profile


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
