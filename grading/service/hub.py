"""How the hub runs and grants the grading service, and the nbgrader config user servers get.

`configure_grading` is called by platform/hubconfig.py's `configure_services` through the hub
extension at the end of this file (entry point `coursehub.hub_extensions`); `nbgrader_config_text`
is what hubconfig writes as `nbgrader_config.py` into the student and staff Jupyter config folders.

Permissions: the service holds a role with `list:users`, `read:users:name`, `read:users:groups` and
`read:groups` (to learn course roles), never admin. For the roster sync it may also change the
course groups' members, and only those: `groups!group=course:<id>:<role>` for every course of the
catalog and each role (`course_group_scopes`). It cannot create users or groups (no `admin:*`):
a group appears with the first launch in that role, which also adds its members. Every user, and the token of every user server,
gets `access:services!service=grading`, so the plugin in a user's server can call the service as
that user and nobody else.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from coursehub.platform.courses import Catalog
from coursehub.platform.groups import COURSE_ROLES, course_group, staff_courses_of
from coursehub.platform.settings import Settings

from ..exchange import FACTORY_CLASSES
from .coursedirs import course_dirs_root

SERVICE_NAME = "grading"
PREFIX = f"/services/{SERVICE_NAME}/"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: Where the course's shared directory appears in a staff member's home (on Kubernetes: a mount).
STAFF_MOUNT = "courses"


def service_url(settings: Settings) -> str:
    """The URL user servers use to reach the service directly (not through the proxy)."""
    host = "127.0.0.1" if settings.local else "coursehub-grading"
    return f"http://{host}:{settings.grading.port}{PREFIX}"


def staff_courses(spawner: Any) -> str:
    """Comma-separated ids of the courses the spawning user teaches (instructor or TA)."""
    return ",".join(sorted(staff_courses_of(g.name for g in getattr(spawner.user, "groups", []))))


def configure_grading(c: Any, settings: Settings, catalog: Catalog, services: list[dict], roles: list[dict]) -> None:
    service: dict[str, Any] = {
        "name": SERVICE_NAME,
        "url": service_url(settings).removesuffix(PREFIX),
        "display": True,
        "oauth_no_confirm": True,
        "info": {"description": "coursehub grading service (nbgrader exchange)"},
    }
    if settings.local:
        env = {"PYTHONUNBUFFERED": "1"}
        if settings.source is not None:
            env["COURSEHUB_SETTINGS"] = str(settings.source)
        else:
            env["COURSEHUB_STATE_DIR"] = str(settings.state_dir)
            env["COURSEHUB_COURSES_DIR"] = str(settings.courses_dir)
        service["command"] = [sys.executable, "-m", "coursehub.grading.service"]
        service["environment"] = env
        service["cwd"] = str(settings.state_dir)
        if settings.grading.executor == "local":
            # One autograde worker beside the service; it grades collected submissions from the queue.
            services.append({
                "name": "autograde-worker",
                "command": [sys.executable, "-m", "coursehub.grading.queue.worker"],
                "environment": env,
                "cwd": str(settings.state_dir),
            })
    else:
        # At scale the service runs in its own pod; the chart passes its token to the hub.
        token = os.environ.get("COURSEHUB_GRADING_API_TOKEN")
        if token:
            service["api_token"] = token
    services.append(service)
    roles.append({
        "name": "coursehub-grading",
        "description": "The grading service: read users' course groups; change only course groups (never admin).",
        "scopes": ["list:users", "read:users:name", "read:users:groups", "read:groups",
                   *course_group_scopes(catalog)],
        "services": [SERVICE_NAME],
    })
    _grant(roles, "user", ["self"], [ACCESS_SCOPE])
    _grant(roles, "server", ["users:activity!user", "access:servers!server"], [ACCESS_SCOPE])
    env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    env.update({"COURSEHUB_STAFF_COURSES": staff_courses, "COURSEHUB_GRADING_URL": service_url(settings)})
    if settings.local:
        # nbgrader's gradebook runs the `alembic` command: local servers need this Python's bin on PATH.
        bindir = os.path.dirname(sys.executable)
        path = os.environ.get("PATH", "")
        if bindir not in path.split(os.pathsep):
            env["PATH"] = os.pathsep.join([bindir, path])
    c.Spawner.environment = env


def course_group_scopes(catalog: Catalog) -> list[str]:
    """Scopes for the roster sync: the members of each course group, nothing else."""
    return [f"groups!group={course_group(course.id, role)}" for course in catalog for role in COURSE_ROLES]


def _grant(roles: list[dict], name: str, defaults: list[str], scopes: list[str]) -> None:
    """Add scopes to one of JupyterHub's default roles, defined once in load_roles (other parts of
    coursehub add theirs to the same entry)."""
    role = next((r for r in roles if r.get("name") == name), None)
    if role is None:
        role = {"name": name, "scopes": list(defaults)}
        roles.append(role)
    role["scopes"] = list(dict.fromkeys([*role.get("scopes", []), *scopes]))


def nbgrader_config_text(settings: Settings, *, staff: bool) -> str:
    """nbgrader_config.py for user servers: the coursehub exchange, and for staff the shared course
    directory of the course the server was started for (if they teach it)."""
    lines = [
        "# Written by coursehub; changes are overwritten at hub start.",
        "import os",
        "",
        "c = get_config()  # noqa",
    ]
    if not settings.grading.enabled:
        return "\n".join(lines) + "\n"
    for role, cls in FACTORY_CLASSES.items():
        lines.append(f"c.ExchangeFactory.{role} = {cls!r}")
    lines += [
        f"c.CoursehubExchange.service_url = os.environ.get('COURSEHUB_GRADING_URL') or {service_url(settings)!r}",
        "c.CoursehubExchange.path_includes_course = True",
        "_course = os.environ.get('COURSEHUB_COURSE', '')",
        "if _course:",
        "    c.CourseDirectory.course_id = _course",
    ]
    if staff:
        shared = str(course_dirs_root(settings)) if settings.local else ""
        lines += [
            "# Course staff share one course directory: ~/courses/<course> (a link on the local",
            "# platform, a volume on Kubernetes). Only for a course this user teaches.",
            "if _course and _course in os.environ.get('COURSEHUB_STAFF_COURSES', '').split(','):",
            f"    _mount = os.path.join(os.path.expanduser('~'), {STAFF_MOUNT!r}, _course)",
            f"    _shared = os.path.join({shared!r}, _course) if {shared!r} else ''",
            "    if _shared and os.path.isdir(_shared) and not os.path.lexists(_mount):",
            "        os.makedirs(os.path.dirname(_mount), exist_ok=True)",
            "        os.symlink(_shared, _mount)",
            "    c.CourseDirectory.root = _mount",
        ]
    return "\n".join(lines) + "\n"


class GradingHubExtension:
    """The grading service as a hub extension (entry point `coursehub.hub_extensions: grading`)."""

    name = SERVICE_NAME

    @staticmethod
    def enabled(settings: Settings) -> bool:
        return settings.grading.enabled

    configure = staticmethod(configure_grading)

    @staticmethod
    def nbgrader_config(settings: Settings, *, staff: bool) -> str:
        return nbgrader_config_text(settings, staff=staff)


HUB_EXTENSION = GradingHubExtension()
