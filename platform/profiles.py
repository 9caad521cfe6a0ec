"""Course profiles: what a course's user server looks like, for every spawner backend.

One `CourseProfile` per course, built from `course.yaml`'s `environment`. The local spawner uses
it for environment variables and the default URL; KubeSpawner uses the same data for image and
resources (see `coursehub.platform.kube`). Keeping one source means a course behaves the same on a
laptop and on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .courses import Course, parse_quantity
from .groups import COURSE_ROLES, course_group, courses_of, is_staff

# courses_of and is_staff live in .groups (the home of course roles); re-exported for existing importers.
__all__ = ["CourseProfile", "courses_of", "is_staff", "profile_for"]


@dataclass(frozen=True)
class CourseProfile:
    slug: str
    display_name: str
    description: str
    image: str
    cpu_guarantee: float
    cpu_limit: float
    mem_guarantee: int
    mem_limit: int
    storage: str
    default_url: str
    env: dict[str, str] = field(default_factory=dict)
    #: The hub groups whose members may start this profile.
    groups: tuple[str, ...] = ()


def profile_for(course: Course) -> CourseProfile:
    e = course.environment
    return CourseProfile(
        slug=course.id,
        display_name=course.title,
        description=course.description,
        image=e.image,
        cpu_guarantee=e.cpu_guarantee,
        cpu_limit=e.cpu_limit,
        mem_guarantee=parse_quantity(e.mem_guarantee),
        mem_limit=parse_quantity(e.mem_limit),
        storage=e.storage,
        default_url=e.default_url,
        env={**e.env, "COURSEHUB_COURSE": course.id},
        groups=tuple(course_group(course.id, role) for role in COURSE_ROLES),
    )

