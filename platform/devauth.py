"""A development login for the local platform: any name, no password, loopback only.

It exists for trying coursehub and for tests. It refuses to start unless the hub listens on
loopback only, so it can never be exposed to a network by accident. Users listed as staff of a
course in course.yaml become its instructors or TAs; everybody else is a student of every course.
"""

from __future__ import annotations

import re

from jupyterhub.auth import Authenticator
from traitlets import Dict, Unicode

from .groups import course_group, merged_groups
from .settings import is_loopback

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class DevLoginAuthenticator(Authenticator):
    login_service = "development login"

    hub_ip = Unicode("127.0.0.1", config=True, help="The address the hub's public side binds to.")
    #: {course_id: {"instructors": [...], "teaching_assistants": [...]}}
    course_staff = Dict(config=True, help="Course staff by course id (set by coursehub).")

    def check_loopback(self) -> None:
        if not is_loopback(self.hub_ip):
            raise RuntimeError(
                f"The development login only runs when the hub binds to loopback, not {self.hub_ip!r}. "
                "Set auth.dev_login: false and configure LTI or SSO."
            )

    async def authenticate(self, handler, data):  # noqa: ANN001, ANN201 - JupyterHub's signature
        self.check_loopback()
        name = (data or {}).get("username", "").strip().lower()
        if not NAME.match(name):
            self.log.info("dev login refused: invalid username")
            return None
        return {"name": name, "groups": merged_groups(handler, name, self.groups_for(name))}

    def groups_for(self, name: str) -> list[str]:
        groups = []
        for course_id, staff in self.course_staff.items():
            if name in staff.get("instructors", []):
                groups.append(course_group(course_id, "instructor"))
            elif name in staff.get("teaching_assistants", []):
                groups.append(course_group(course_id, "ta"))
            else:
                groups.append(course_group(course_id, "student"))
        return groups
