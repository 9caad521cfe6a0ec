"""Course groups through the hub's REST API, with the grading service's own scoped token.

The service may change only the members of course groups (`groups!group=course:<id>:<role>`, see
grading/service/hub.py) and read user names. It cannot create users or groups (no `admin:*`):
people the roster lists who never signed in to the hub, and groups nobody launched into yet, are
skipped here; the first launch, from the same LMS, adds them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from urllib.parse import quote

from coursehub.platform.groups import course_group

from .httpclient import Http, Response

log = logging.getLogger("coursehub.grading.lms")


class HubRefused(RuntimeError):
    """The hub said no (the message names the call and the status, never the token)."""


class HubGroups:
    """`add_members` / `remove_members` of `course:<id>:<role>` for a roster sync."""

    def __init__(self, api_url: str, token: str, http: Http | None = None):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.http = http or Http()

    @classmethod
    def from_env(cls) -> HubGroups | None:
        """The hub gives its services JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN; None outside the hub."""
        url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        return cls(url, token) if url and token else None

    async def _api(self, method: str, path: str, body: dict | None = None) -> Response:
        return await self.http.request(method, f"{self.api_url}/{path}",
                                       body=json.dumps(body) if body is not None else None,
                                       headers={"Authorization": f"token {self.token}",
                                                "Content-Type": "application/json"})

    async def existing(self, usernames: Iterable[str]) -> list[str]:
        """The ones the hub knows (GET users/<name>: 200; 404 for people who never signed in)."""
        out = []
        for name in usernames:
            resp = await self._api("GET", f"users/{quote(name, safe='')}")
            if resp.status == 200:
                out.append(name)
            elif resp.status != 404:
                raise HubRefused(f"hub refused to look up a user: HTTP {resp.status}")
        return out

    async def _members(self, method: str, group: str, usernames: list[str]) -> Response:
        path = f"groups/{quote(group, safe='')}/users"
        resp = await self._api(method, path, {"users": usernames})
        if resp.status == 400:  # someone never signed in ("No such user"): only the known ones
            known = await self.existing(usernames)
            if not known:
                return Response(200, {}, b"")
            resp = await self._api(method, path, {"users": known})
        return resp

    async def add_members(self, course_id: str, role: str, usernames: Iterable[str]) -> None:
        usernames = sorted(set(usernames))
        if not usernames:
            return
        group = course_group(course_id, role)  # type: ignore[arg-type]
        resp = await self._members("POST", group, usernames)
        if resp.status == 404:  # nobody launched in that role yet: their first launch makes it
            log.info("course group %s does not exist yet: %d member(s) join at their launch", group, len(usernames))
            return
        if resp.status != 200:
            raise HubRefused(f"hub refused to add members to {group}: HTTP {resp.status}")

    async def remove_members(self, course_id: str, role: str, usernames: Iterable[str]) -> None:
        usernames = sorted(set(usernames))
        if not usernames:
            return
        group = course_group(course_id, role)  # type: ignore[arg-type]
        resp = await self._members("DELETE", group, usernames)
        if resp.status not in (200, 404):  # 404: no such group, so nobody is in it
            raise HubRefused(f"hub refused to remove members from {group}: HTTP {resp.status}")

    def ensure_students(self, students: list[dict]) -> None:
        return None
