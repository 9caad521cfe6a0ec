"""Test doubles for the LMS side: fixed launch services and hub groups through the REST API."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

from coursehub.grading.lms.records import LaunchServices


class StaticServices:
    """A fixed mapping (tests, scripts): {(course, student): LaunchServices}."""

    def __init__(self, records: Iterable[LaunchServices]):
        self.records = {(r.course_id, r.username): r for r in records}

    def for_student(self, course_id: str, student: str) -> LaunchServices | None:
        return self.records.get((course_id, student))

    def for_course(self, course_id: str) -> list[LaunchServices]:
        seen: dict[str, LaunchServices] = {}
        for r in self.records.values():
            if r.course_id == course_id and r.nrps_url:
                seen.setdefault(r.context_id or r.nrps_url, r)
        return list(seen.values())


class HubGroupsSink:
    """Course groups through the hub's REST API: creates missing users, then adds them to
    `course:<id>:<role>`. Needs the scopes admin:users and groups (or admin:groups) for the course's
    groups. Does not work when the hub runs with Authenticator.manage_groups = True."""

    def __init__(self, api_url: str, token: str, http=None):  # noqa: ANN001
        from coursehub.grading.lms.httpclient import Http

        self.api_url = api_url.rstrip("/")
        self.token = token
        self.http = http or Http()

    async def _api(self, method: str, path: str, body: dict | None = None):  # noqa: ANN201
        return await self.http.request(method, f"{self.api_url}/{path}", body=json.dumps(body) if body else None,
                                       headers={"Authorization": f"token {self.token}",
                                                "Content-Type": "application/json"})

    async def add_members(self, course_id: str, role: str, usernames: Iterable[str]) -> None:
        from coursehub.platform.courses import course_group

        usernames = list(usernames)
        if not usernames:
            return
        group = quote(course_group(course_id, role), safe="")  # type: ignore[arg-type]
        resp = await self._api("POST", "users", {"usernames": usernames})
        if resp.status not in (201, 409):
            raise RuntimeError(f"hub refused to create users: HTTP {resp.status}")
        resp = await self._api("POST", f"groups/{group}", None)
        if resp.status not in (201, 409):
            raise RuntimeError(f"hub refused to create group {course_group(course_id, role)}: HTTP {resp.status}")  # type: ignore[arg-type]
        resp = await self._api("POST", f"groups/{group}/users", {"users": usernames})
        if resp.status != 200:
            raise RuntimeError(f"hub refused to add members to {course_group(course_id, role)}: HTTP {resp.status}")  # type: ignore[arg-type]

    def ensure_students(self, students: list[dict]) -> None:
        return None
