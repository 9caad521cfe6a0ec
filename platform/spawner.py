"""The local spawner: one home folder per user, the course profile applied, JupyterLab with nbgrader.

`user_options["course"]` picks the course whose profile the server gets; it must be a course the
user belongs to (checked here, never trusted from the request). Staff of any course get the staff
Jupyter configuration (formgrader, create-assignment), students the student one.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
from pathlib import Path, PurePosixPath

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Dict, Unicode, default
from traitlets.config import LoggingConfigurable

from . import isolation, ports, readiness, userserver
from .groups import courses_of, is_staff
from .profiles import CourseProfile

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Seconds between checks whether a starting server listens (a refused loopback connect costs ~0.1 ms).
READY_POLL = 0.1


def safe_dirname(name: str) -> str:
    """A hub username as a single, harmless path component."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned or "_"


class CourseMembership(LoggingConfigurable):
    """What both spawners (this local one and platform/kube/spawner.py's KubeSpawner subclass) read
    from the user's hub groups: their course roles, and so which Jupyter configuration their server
    gets (staff of any course: formgrader and course tools; everyone else: the student one)."""

    role_config_root = Unicode(
        "", config=True,
        help="Folder with 'student' and 'staff' Jupyter config folders (written by coursehub locally, "
        "mounted from singleuser.extraFiles on Kubernetes); empty: no role configuration.",
    )

    def user_course_roles(self) -> dict[str, set[str]]:
        return courses_of([getattr(g, "name", g) for g in (getattr(self.user, "groups", None) or [])])

    def staff_anywhere(self) -> bool:
        return any(is_staff(roles) for roles in self.user_course_roles().values())

    def role_env(self) -> dict[str, str]:
        """COURSEHUB_ROLE and the role's JUPYTER_CONFIG_PATH (when there are role configurations)."""
        if not self.role_config_root:
            return {}
        role = "staff" if self.staff_anywhere() else "student"
        return {"COURSEHUB_ROLE": role, "JUPYTER_CONFIG_PATH": f"{self.role_config_root.rstrip('/')}/{role}"}


class CourseSpawnerMixin(CourseMembership):
    """Course selection of the local spawner: the course from the launch's query or user_options,
    among the course profiles the hub configuration gives (the Kubernetes spawner selects through
    KubeSpawner's own profile_list instead)."""

    #: {course_id: CourseProfile}, set by the hub configuration.
    course_profiles = Dict(config=True, help="Course profiles by course id (set by coursehub).")

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


def apply_course_option(spawner: CourseSpawnerMixin, user_options: dict) -> None:
    """JupyterHub's `apply_user_options` hook: a course the user is not in becomes an HTTP 400."""
    unknown = set(user_options) - {"course"}
    if unknown:
        raise ValueError(f"Unknown server options: {', '.join(sorted(unknown))}")
    spawner.selected_course()


_hardened: set[Path] = set()


def _harden_once(state_dir: Path) -> None:
    """The hub may run without `coursehub up` (jupyterhub -f ...): close the state folder anyway."""
    if state_dir not in _hardened:
        isolation.harden_state_dir(state_dir)
        _hardened.add(state_dir)


class LocalCourseSpawner(CourseSpawnerMixin, SimpleLocalProcessSpawner):
    """Per-user homes under the state folder, course profiles, and the isolation `coursehub up` chose
    (platform/isolation.py): a system account and a sandbox per user, a sandbox only, or none."""

    homes_dir = Unicode(config=True, help="Folder holding one home folder per user.")
    isolation_mode = Unicode(config=True, help="users | sandbox | none (default: $COURSEHUB_USER_ISOLATION).")

    _account: pwd.struct_passwd | None = None
    _course_python: Path | None = None
    _drawn_port = 0

    @default("isolation_mode")
    def _default_isolation_mode(self) -> str:
        mode = os.environ.get(isolation.MODE_ENV, "none")
        return mode if mode in isolation.MODES else "none"

    @default("home_dir")
    def _default_home_dir(self) -> str:
        return str(Path(self.homes_dir) / safe_dirname(self.user.name))

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0 and self.isolation_mode != "users":  # the server itself runs as root
            args.append("--ServerApp.allow_root=True")
        return args

    def get_env(self) -> dict:
        env = super().get_env()
        profile = self.selected_course()
        if profile is not None:
            env.update(profile.env)
        if self._course_python is not None:  # the course's own environment comes first
            bin_dir = self._course_python.parent
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
            env["VIRTUAL_ENV"] = str(bin_dir.parent)
        env.update(self.role_env())
        return env

    def user_env(self, env: dict) -> dict:
        env = super().user_env(env)
        if self._account is not None:
            env["USER"] = env["LOGNAME"] = self._account.pw_name
        return env

    def make_preexec_fn(self, name: str):  # noqa: ANN201 - JupyterHub's signature
        home, private = self.home_dir, self.isolation_mode != "none"

        def preexec() -> None:
            if private:
                os.umask(0o007)  # new files: the user's, and their course staff group's
            os.makedirs(home, 0o700 if private else 0o755, exist_ok=True)
            os.chdir(home)

        return preexec

    def taught_course_dirs(self) -> dict[str, Path]:
        """{course: shared nbgrader folder} of the courses this user teaches (instructor or TA)."""
        root = self._settings().state_dir / "course-dirs"
        return {c: root / c for c, roles in self.user_course_roles().items() if is_staff(roles)}

    def _settings(self):  # noqa: ANN202 - the hub's settings (COURSEHUB_SETTINGS)
        from .settings import load_settings

        return load_settings()

    async def _isolate(self) -> list[str]:
        """Prepare the account and home; the command prefix that confines the server."""
        mode = self.isolation_mode
        home = Path(self.home_dir)
        data = await asyncio.to_thread(self.course_data)
        if mode == "none":
            self.log.warning("Server of %s runs without isolation (local mode for trying coursehub)", self.user.name)
            if data:
                self.log.warning("Server of %s: course data (%s) is not mounted without isolation; read it from "
                                 "the course folder, or run with bubblewrap", self.user.name,
                                 ", ".join(str(inside) for _, inside in data))
            return []
        settings = self._settings()
        taught = self.taught_course_dirs()
        self._account = None
        if mode == "users":
            await asyncio.to_thread(_harden_once, settings.state_dir)
            self._account = await asyncio.to_thread(isolation.ensure_account, self.user.name, home)
            await asyncio.to_thread(isolation.share_course_dirs, self._account, taught, list(self.course_profiles))
        else:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        hidden = [settings.state_dir, Path(self.homes_dir), settings.storage_dir(), settings.courses_dir]
        read_only = [settings.state_dir / d for d in isolation.PUBLIC if (settings.state_dir / d).is_dir()]
        if self._account is not None:
            for folder in read_only:
                if folder.name != "envs":  # built world-readable (0755) by `coursehub env build`
                    await asyncio.to_thread(isolation.readable_by_all, folder)
        wrapper = isolation.sandbox_command(
            [], home=home, hidden=hidden, read_only=read_only,
            read_write=[d for d in taught.values() if d.is_dir()], account=self._account, data=data,
        )
        self.log.info("Server of %s runs as %s in a sandbox (isolation: %s)", self.user.name,
                      self._account.pw_name if self._account else pwd.getpwuid(os.geteuid()).pw_name, mode)
        return wrapper

    def course_data(self) -> list[tuple[Path, PurePosixPath]]:
        """(host folder, mount path) of the selected course's datasets (course.yaml `data:`), bound
        read-only into the server's sandbox."""
        from .environments_data import data_mounts

        profile = self.selected_course()
        if profile is None:
            return []
        folder = Path(self._settings().courses_dir) / profile.slug
        return data_mounts(folder) if (folder / "course.yaml").is_file() else []

    def course_environment(self, course_id: str) -> Path | None:
        """The python of the course's built environment (`coursehub env build`), or None for the
        platform's own. A course whose environment is not built yet runs in the platform's, with a
        warning naming the command that builds it."""
        from .environments import EnvironmentNotBuilt, course_python

        try:
            return course_python(self._settings(), course_id)
        except EnvironmentNotBuilt as e:
            self.log.warning("Server of %s uses the platform's environment: %s", self.user.name, e)
            return None

    async def start(self):  # noqa: ANN201 - JupyterHub's signature
        profile = self.selected_course()  # refuses courses the user does not belong to
        self._course_python = None
        if profile is not None:
            self.default_url = profile.default_url
            self.mem_limit = profile.mem_limit
            self.cpu_limit = profile.cpu_limit
            self._course_python = await asyncio.to_thread(self.course_environment, profile.slug)
        if self.port in (0, self._drawn_port):  # "any": drawn where no other process draws (ports.py)
            self.port = self._drawn_port = ports.free_port(self.ip or "127.0.0.1")
        wrapper = await self._isolate()
        original = list(self.cmd)
        self.cmd = wrapper + self.server_command(original)
        try:
            ip_port = await super().start()
        finally:
            self.cmd = original
        await self._until_listening(*ip_port)
        return ip_port

    def server_command(self, configured: list[str]) -> list[str]:
        """The command of this start: the course environment's server when it has one, and for
        `jupyterhub-singleuser`, the same server through coursehub's entry point (userserver.py),
        which skips import-time work nobody waits for. Another configured command runs as it is."""
        script = Path(configured[0]) if configured else None
        bin_dir = self._course_python.parent if self._course_python is not None else script and script.parent
        if script is None or bin_dir is None:
            return configured
        if script.name == "jupyterhub-singleuser" and (bin_dir / "python").exists():
            return userserver.command(str(bin_dir / "python"), str(bin_dir / script.name), configured[1:])
        if self._course_python is not None:
            return [str(bin_dir / "jupyterhub-singleuser"), *configured[1:]]
        return configured

    async def _until_listening(self, ip: str, port: int) -> None:
        """Return once the new server accepts connections (readiness.py); a server that exits before
        that fails the start at once, with its exit status, and one still not listening after
        `http_timeout` fails it then. With no process of ours to watch, the hub's own wait decides."""
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        await readiness.until_listening(ip or "127.0.0.1", port, exit_status=proc.poll, timeout=self.http_timeout,
                                        interval=READY_POLL, who=self.user.name)
