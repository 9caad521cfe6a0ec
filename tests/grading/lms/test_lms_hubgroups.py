"""HubGroups: the hub REST calls that put roster members into course groups and take leavers out,
with the service's scoped token (no user creation: it holds no admin:users)."""

from __future__ import annotations

import json

import pytest

from coursehub.grading.lms.httpclient import Response
from coursehub.grading.lms.hubgroups import HubGroups, HubRefused


class FakeHubApi:
    """The group endpoints of JupyterHub 6: 400 "No such user" for unknown names, 404 unknown group."""

    def __init__(self, users=("ann", "bob", "tim"), groups=None, refuse: dict | None = None):
        self.users = set(users)
        self.groups: dict[str, set[str]] = {g: set(m) for g, m in (groups or {}).items()}
        self.refuse = refuse or {}
        self.calls: list[tuple[str, str, dict | None, str]] = []

    async def request(self, method, url, *, headers=None, body=None):
        from urllib.parse import unquote

        data = json.loads(body) if body else None
        path = url.split("/hub/api/", 1)[1]
        self.calls.append((method, path, data, headers["Authorization"]))
        if (method, path) in self.refuse:
            return Response(self.refuse[(method, path)], {}, b"")
        parts = [unquote(p) for p in path.split("/")]
        if parts[0] == "users" and method == "GET":
            return Response(200 if parts[1] in self.users else 404, {}, b"")
        if parts[0] == "groups" and len(parts) == 2 and method == "POST":
            if parts[1] in self.groups:
                return Response(409, {}, b"")
            self.groups[parts[1]] = set()
            return Response(201, {}, b"")
        if parts[0] == "groups" and parts[2:] == ["users"]:
            if parts[1] not in self.groups:
                return Response(404, {}, b"")
            if any(u not in self.users for u in data["users"]):
                return Response(400, {}, b"No such user")
            members = self.groups[parts[1]]
            (members.update if method == "POST" else members.difference_update)(data["users"])
            return Response(200, {}, b"{}")
        return Response(404, {}, b"")


async def test_members_join_the_course_group_and_unknown_people_are_skipped():
    api = FakeHubApi(groups={"course:c1:student": {"bob"}})
    hub = HubGroups("http://hub/hub/api/", "secret", http=api)
    await hub.add_members("c1", "student", ["ann", "bob", "zed"])  # zed never signed in
    assert api.groups["course:c1:student"] == {"ann", "bob"}
    assert not any(m == "POST" and p == "users" for m, p, *_ in api.calls), "never creates users"
    assert all(auth == "token secret" for *_, auth in api.calls)


async def test_a_missing_group_is_left_to_the_first_launch():
    api = FakeHubApi()  # the service may not create groups (no admin:groups)
    await HubGroups("http://hub/hub/api", "t", http=api).add_members("c1", "ta", ["tim"])
    assert api.groups == {} and all(p.endswith("/users") for _m, p, *_ in api.calls)


async def test_leavers_are_taken_out():
    api = FakeHubApi(groups={"course:c1:ta": {"tim", "ann"}})
    hub = HubGroups("http://hub/hub/api", "t", http=api)
    await hub.remove_members("c1", "ta", ["tim", "zed"])
    assert api.groups["course:c1:ta"] == {"ann"}
    await hub.remove_members("c1", "instructor", ["tim"])  # no such group: nothing to do


async def test_refusal_is_reported():
    api = FakeHubApi(groups={"course:c1:ta": set()}, refuse={("POST", "groups/course%3Ac1%3Ata/users"): 403})
    with pytest.raises(HubRefused, match="refused to add members to course:c1:ta"):
        await HubGroups("http://hub/hub/api", "t", http=api).add_members("c1", "ta", ["tim"])
