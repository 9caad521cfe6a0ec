"""`CourseKubeSpawner`: KubeSpawner that offers each user only the profiles of their courses.

The chart puts every course profile in `singleuser.profileList` (so the pre-puller sees their
images); this subclass filters that list by the user's JupyterHub groups each time it is read,
so a student can neither see nor request (through the REST API) another course's environment:
KubeSpawner rejects a profile slug that is not in the filtered list.

Like the local spawner (platform/spawner.py) it also
- takes the course from `?course=<id>` (JupyterHub 6: `?opt-course=`) or `user_options["course"]`,
  which is how the LTI launch asks for a server; the profile slug is the course id;
- gives course staff (instructor or TA of any course) the staff Jupyter configuration (formgrader,
  create-assignment) and everyone else the student one, through JUPYTER_CONFIG_PATH: the course
  roles and the role's configuration come from the same `CourseMembership` as the local spawner's;
- mounts the course's shared nbgrader directory (its ReadWriteMany claim, `course_storage_claims`)
  at ~/courses/<course> in the server of a user who teaches the course it was started for: staff
  of one course share it, and the grading service and worker see what they collect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Dict, Float, Unicode, default

from coursehub.platform import readiness, userserver
from coursehub.platform.groups import is_staff
from coursehub.platform.spawner import CourseMembership

from .profiles import visible_profiles


class CourseKubeSpawner(CourseMembership, KubeSpawner):
    admin_sees_all_courses = Bool(
        False, config=True,
        help="Let hub admins start any course's environment (for operators checking a course).",
    )
    require_course = Bool(
        True, config=True,
        help="Refuse to start a server for a user who belongs to no course (instead of the plain "
        "singleuser defaults).",
    )
    course_storage_claims = Dict(
        {}, config=True,
        help="course id -> the claim holding that course's shared nbgrader directory (ReadWriteMany).",
    )
    course_storage_mount = Unicode(
        "/home/jovyan/courses/{course}", config=True,
        help="Where a course's shared directory appears in its staff's servers (the nbgrader config "
        "of staff servers uses ~/courses/<course> as the course directory).",
    )

    ready_poll_interval = Float(
        0.25, config=True,
        help="Seconds between checks whether a started pod's server accepts connections. start() "
        "returns when it does, so the hub's own HTTP check (with back-off up to 5 s) succeeds at once; "
        "0 leaves the wait to the hub alone.",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        configured = self.profile_list
        self._course_profiles: list[dict[str, Any]] = []
        if callable(configured):
            return  # an operator's own callable wins; nothing to wrap
        if isinstance(configured, dict):  # KubeSpawner 7.1's dict form: keyed by slug, in key order
            configured = [configured[key] for key in sorted(configured)]
        self._course_profiles = list(configured or [])
        self.profile_list = self._profiles_for_user

    # ---- which profiles ------------------------------------------------------------------

    def _profiles_for_user(self, spawner: KubeSpawner) -> list[dict[str, Any]]:
        return visible_profiles(
            self._course_profiles,
            [getattr(g, "name", g) for g in (getattr(self.user, "groups", None) or [])],
            admin=bool(getattr(self.user, "admin", False)),
            admin_sees_all=self.admin_sees_all_courses,
        )

    # ---- the course from the launch -------------------------------------------------------

    @default("options_from_form")
    def _course_options_from_form_default(self):
        return self._course_options_from_form

    def _course_options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:
        """KubeSpawner's form parsing, plus `course` (the launch's query argument) as the profile."""
        course = formdata.get("course")
        if isinstance(course, list):
            course = course[0] if course else None
        options = self._options_from_form({k: v for k, v in formdata.items() if k != "course"})
        if course and "profile" not in options:
            options["profile"] = course
        return options

    async def load_user_options(self) -> None:
        options = dict(self.user_options or {})
        course = options.pop("course", None)
        if course and "profile" not in options:
            options["profile"] = course  # REST API callers may pass {"course": id}
            self.user_options = options
        if self.require_course and self._course_profiles and not self._profiles_for_user(self):
            raise web.HTTPError(
                403,
                "You are not enrolled in a course on this hub yet. Open the course from your LMS "
                "(Canvas, Moodle, ...) once; that adds you to it.",
            )
        await super().load_user_options()
        self._mount_course_storage(str((self.user_options or {}).get("profile") or ""))

    def _mount_course_storage(self, course: str) -> None:
        claim = self.course_storage_claims.get(course)
        if not claim or not is_staff(self.user_course_roles().get(course, set())):
            return
        name = f"course-{course}"
        volume = {"name": name, "persistentVolumeClaim": {"claimName": claim}}
        mount = {"name": name, "mountPath": self.course_storage_mount.format(course=course)}
        if isinstance(self.volumes, dict):
            self.volumes = {**self.volumes, name: volume}
        else:
            self.volumes = [*self.volumes, volume]
        if isinstance(self.volume_mounts, dict):
            self.volume_mounts = {**self.volume_mounts, name: mount}
        else:
            self.volume_mounts = [*self.volume_mounts, mount]

    # ---- the server's start ----------------------------------------------------------------

    async def start(self) -> str:
        """KubeSpawner's start (the pod is running), then until the server in it accepts
        connections (readiness.py); a pod that stops meanwhile fails the start."""
        url = await super().start()
        if self.ready_poll_interval > 0:
            parts = urlsplit(url)
            await readiness.until_listening(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                                            exit_status=self.poll, timeout=self.http_timeout,
                                            interval=self.ready_poll_interval, who=self.user.name)
        return url

    # ---- the server's command --------------------------------------------------------------

    async def get_pod_manifest(self) -> Any:
        """The pod runs `jupyterhub-singleuser` through coursehub's entry point (userserver.py), which
        skips import-time work nobody waits for, as the local spawner does."""
        original = list(self.cmd or [])
        self.cmd = userserver.pod_command(original)
        try:
            return await super().get_pod_manifest()
        finally:
            self.cmd = original

    # ---- staff or student (CourseMembership) --------------------------------------------------

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["COURSEHUB_ROLE"] = "staff" if self.staff_anywhere() else "student"
        env.update(self.role_env())
        return env
