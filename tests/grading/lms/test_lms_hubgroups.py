"""HubGroupsSink: the hub REST calls that put roster members into course groups."""

from __future__ import annotations

import json

import pytest
from support.lms_doubles import HubGroupsSink

from coursehub.grading.lms.httpclient import Response


class FakeHubApi:
    def __init__(self, statuses: dict[tuple[str, str], int] | None = None):
        self.calls: list[tuple[str, str, dict | None, str]] = []
        self.statuses = statuses or {}

    async def request(self, method, url, *, headers=None, body=None):
        self.calls.append((method, url, json.loads(body) if body else None, headers["Authorization"]))
        path = url.split("/hub/api/", 1)[1]
        return Response(self.statuses.get((method, path), 201 if not path.endswith("/users") else 200), {}, b"")


async def test_members_join_the_course_group():
    api = FakeHubApi({("POST", "users"): 409})  # all of them exist already: fine
    sink = HubGroupsSink("http://hub/hub/api/", "secret", http=api)
    await sink.add_members("c1", "student", ["ann", "bob"])
    assert [(m, u.split("/hub/api/")[1], b) for m, u, b, _ in api.calls] == [
        ("POST", "users", {"usernames": ["ann", "bob"]}),
        ("POST", "groups/course%3Ac1%3Astudent", None),
        ("POST", "groups/course%3Ac1%3Astudent/users", {"users": ["ann", "bob"]}),
    ]
    assert all(auth == "token secret" for *_, auth in api.calls)


async def test_refusal_is_reported():
    api = FakeHubApi({("POST", "groups/course%3Ac1%3Ata/users"): 403})
    with pytest.raises(RuntimeError, match="refused to add members to course:c1:ta"):
        await HubGroupsSink("http://hub/hub/api", "t", http=api).add_members("c1", "ta", ["tim"])
