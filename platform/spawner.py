"""The local spawner: one home folder per user, the course profile applied, JupyterLab with nbgrader.

`user_options["course"]` picks the course whose profile the server gets; it must be a course the
user belongs to (checked here, never trusted from the request). Staff of any course get the staff
Jupyter configuration (formgrader, create-assignment), students the student one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Dict, Unicode, default
from traitlets.config import LoggingConfigurable

from .profiles import CourseProfile, courses_of, is_staff

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_dirname(name: str) -> str:
    """A hub username as a single, harmless path component."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned or "_"


class CourseSpawnerMixin(LoggingConfigurable):
    """Course selection shared by the local spawner and the KubeSpawner subclass."""

    #: {course_id: CourseProfile}, set by the hub configuration.
    course_profiles = Dict(config=True, help="Course profiles by course id (set by coursehub).")

    def user_course_roles(self) -> dict[str, set[str]]:
        return courses_of([g.name for g in self.user.groups])

    def selected_course(self) -> CourseProfile | None:
        """The profile of the requested course, if the user belongs to it; else the only course they
        have; else None (a server without a course profile)."""
        memberships = self.user_course_roles()
        wanted = (self.user_options or {}).get("course")
        if isinstance(wanted, list):  # form and query arguments arrive as lists
            wanted = wanted[0] if wanted else None
        if wanted:
            if wanted not in memberships or wanted not in self.course_profiles:
                raise ValueError(f"You are not enrolled in the course {wanted!r}.")
            return self.course_profiles[wanted]
        mine = [c for c in memberships if c in self.course_profiles]
        return self.course_profiles[mine[0]] if len(mine) == 1 else None

    def options_from_query(self, query: dict) -> dict:
        # Works for JupyterHub 5 (`?course=`) and 6 (`?opt-course=`, prefix stripped by the hub).
        course = query.get("course")
        return {"course": course[0] if isinstance(course, list) else course} if course else {}

    def options_from_form(self, formdata: dict) -> dict:
        return self.options_from_query(formdata)

    def staff_anywhere(self) -> bool:
        return any(is_staff(roles) for roles in self.user_course_roles().values())


def apply_course_option(spawner: CourseSpawnerMixin, user_options: dict) -> None:
    """JupyterHub's `apply_user_options` hook: a course the user is not in becomes an HTTP 400."""
    unknown = set(user_options) - {"course"}
    if unknown:
        raise ValueError(f"Unknown server options: {', '.join(sorted(unknown))}")
    spawner.selected_course()


class LocalCourseSpawner(CourseSpawnerMixin, SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with per-user homes under the state folder and course profiles."""

    homes_dir = Unicode(config=True, help="Folder holding one home folder per user.")
    role_config_root = Unicode(
        config=True, help="Folder with 'student' and 'staff' Jupyter config folders (written by coursehub)."
    )

    @default("home_dir")
    def _default_home_dir(self) -> str:
        return str(Path(self.homes_dir) / safe_dirname(self.user.name))

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0:  # containers and CI run as root; the hub runs servers as itself
            args.append("--ServerApp.allow_root=True")
        return args

    def get_env(self) -> dict:
        env = super().get_env()
        profile = self.selected_course()
        if profile is not None:
            env.update(profile.env)
        if self.role_config_root:
            role = "staff" if self.staff_anywhere() else "student"
            env["JUPYTER_CONFIG_PATH"] = str(Path(self.role_config_root) / role)
            env["COURSEHUB_ROLE"] = role
        return env

    async def start(self):  # noqa: ANN201 - JupyterHub's signature
        profile = self.selected_course()  # refuses courses the user does not belong to
        if profile is not None:
            self.default_url = profile.default_url
            self.mem_limit = profile.mem_limit
            self.cpu_limit = profile.cpu_limit
        return await super().start()
