"""The grading service's cached authorisation (issue 17, the deadline rush): token answers cached by
token hash for a short TTL, course roles from the course's member lists, each bounded in time."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest

from coursehub.grading.service.auth import (
    KNOWN_TTL,
    RECHECKS_PER_SECOND,
    ROLES_TTL,
    TOKEN_TTL,
    CourseRoles,
    ServiceHubAuth,
    make_hub_auth,
)

COURSE = "intro"


class FakeHubAPI:
    """Answers HubAuth's requests from memory and counts them: tokens -> user names, group members."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.groups: dict[str, list[str]] = {}
        self.user_groups: dict[str, list[str]] = {}
        self.calls: list[str] = []
        self.group_status = 200

    async def api_request(self, method: str, url: str, **kwargs) -> dict | None:
        await asyncio.sleep(0.01)  # a round trip: concurrent lookups overlap
        if url.endswith("/user"):
            token = kwargs["headers"]["Authorization"].removeprefix("token ")
            self.calls.append("token")
            name = self.tokens.get(token)
            return None if name is None else {"kind": "user", "name": name, "scopes": ["access:services"]}
        name = url.rsplit("/", 1)[1]
        self.calls.append(f"user:{name}")
        return {"kind": "user", "name": name, "groups": self.user_groups.get(name, [])}

    async def hub_get(self, url: str) -> tuple[int, bytes]:
        await asyncio.sleep(0.01)
        group = url.rsplit("/", 1)[1].replace("%3A", ":")
        self.calls.append(f"group:{group}")
        if self.group_status != 200:
            return self.group_status, b"{}"
        if group not in self.groups:
            return 404, b'{"status": 404}'
        return 200, json.dumps({"kind": "group", "name": group, "users": self.groups[group]}).encode()


def hub_auth(fake: FakeHubAPI, ttl: int = TOKEN_TTL) -> ServiceHubAuth:
    auth = ServiceHubAuth(api_token="service-token", api_url="http://127.0.0.1:9/hub/api", cache_max_age=ttl,
                          base_url="/services/grading/")
    auth._api_request = fake.api_request  # type: ignore[method-assign]
    return auth


def lookup(auth: ServiceHubAuth, token: str):
    return auth.user_for_token(token, sync=False)


def test_defaults_are_short_and_documented():
    assert 0 < TOKEN_TTL <= 60 and 0 < ROLES_TTL <= 60
    assert make_hub_auth("/services/grading/").cache_max_age == TOKEN_TTL


def test_token_answer_cached_by_hash_then_expires():
    fake = FakeHubAPI()
    fake.tokens["tok-alice"] = "alice"
    auth = hub_auth(fake, ttl=1)

    async def main() -> None:
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        assert fake.calls == ["token"]  # the second answer came from the cache
        # The cache is keyed by the token's hash: the token itself is not kept.
        keys = list(auth.cache.values)
        assert keys and all("tok-alice" not in k for k in keys)
        assert any(hashlib.sha256(b"tok-alice").hexdigest() in k for k in keys)
        await asyncio.sleep(1.2)  # past the TTL: the hub is asked again
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        assert fake.calls == ["token", "token"]

    asyncio.run(main())


def test_revoked_token_stops_working_within_the_ttl():
    fake = FakeHubAPI()
    fake.tokens["tok-bob"] = "bob"
    auth = hub_auth(fake, ttl=1)

    async def main() -> None:
        assert (await lookup(auth, "tok-bob"))["name"] == "bob"
        del fake.tokens["tok-bob"]  # revoked at the hub
        await asyncio.sleep(1.2)
        assert await lookup(auth, "tok-bob") is None

    asyncio.run(main())


def test_a_cached_identity_never_serves_another_token():
    fake = FakeHubAPI()
    fake.tokens.update({"tok-alice": "alice", "tok-bob": "bob"})
    auth = hub_auth(fake)

    async def main() -> None:
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        # Another valid token, a forged one, and tokens that differ from alice's by a prefix/suffix.
        assert (await lookup(auth, "tok-bob"))["name"] == "bob"
        for forged in ("tok-mallory", "tok-alic", "tok-alicee", "TOK-ALICE", ""):
            assert await lookup(auth, forged) is None
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        assert fake.calls.count("token") == 7  # alice once, every other token its own lookup

    asyncio.run(main())


def test_concurrent_requests_with_one_cold_token_ask_the_hub_once():
    fake = FakeHubAPI()
    fake.tokens.update({"tok-alice": "alice", "tok-bob": "bob"})
    auth = hub_auth(fake)

    async def main() -> None:
        answers = await asyncio.gather(*[lookup(auth, "tok-alice") for _ in range(20)],
                                       *[lookup(auth, "tok-bob") for _ in range(5)])
        assert [a["name"] for a in answers] == ["alice"] * 20 + ["bob"] * 5
        assert fake.calls == ["token", "token"]

    asyncio.run(main())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def course_roles(fake: FakeHubAPI, clock: Clock) -> CourseRoles:
    roles = CourseRoles(hub_auth(fake), ttl=30.0, failed_ttl=5.0, clock=clock)
    roles.hub_get = fake.hub_get  # type: ignore[method-assign]
    return roles


def user(name: str) -> dict:
    return {"kind": "user", "name": name}


def test_a_class_is_known_after_one_read_of_its_groups():
    fake, clock = FakeHubAPI(), Clock()
    students = [f"s{i:03d}" for i in range(200)]
    fake.groups = {f"course:{COURSE}:student": students, f"course:{COURSE}:instructor": ["prof"]}
    roles = course_roles(fake, clock)

    async def main() -> None:
        callers = await asyncio.gather(*(roles.caller(user(n), COURSE) for n in [*students, "prof"]))
        for name, caller in zip([*students, "prof"], callers, strict=True):
            assert caller.name == name
            assert caller.roles == {COURSE: frozenset({"instructor" if name == "prof" else "student"})}
        # Three group reads (the TA group does not exist yet: 404 = no members), no per-user lookups.
        assert sorted(fake.calls) == sorted(f"group:course:{COURSE}:{r}" for r in ("instructor", "ta", "student"))

    asyncio.run(main())


def test_someone_the_lists_do_not_name_is_looked_up_and_gets_only_their_own_roles():
    fake, clock = FakeHubAPI(), Clock()
    fake.groups = {f"course:{COURSE}:student": ["alice"]}
    fake.user_groups = {"newcomer": [f"course:{COURSE}:student"], "mallory": ["course:other:student"]}
    roles = course_roles(fake, clock)

    async def main() -> None:
        assert (await roles.caller(user("alice"), COURSE)).roles == {COURSE: frozenset({"student"})}
        # Joined after the lists were read: looked up on their own, with their real roles.
        assert (await roles.caller(user("newcomer"), COURSE)).roles == {COURSE: frozenset({"student"})}
        # Not a member: nothing in this course, whatever course the request names.
        mallory = await roles.caller(user("mallory"), COURSE)
        assert mallory.roles_in(COURSE) == frozenset()
        assert "user:newcomer" in fake.calls and "user:mallory" in fake.calls
        assert "user:alice" not in fake.calls
        # A service, or a model without a name, is not a caller.
        assert await roles.caller({"kind": "service", "name": "x"}, COURSE) is None
        assert await roles.caller({"kind": "user"}, COURSE) is None

    asyncio.run(main())


def test_course_roles_expire_removed_members_lose_access_within_the_ttl():
    fake, clock = FakeHubAPI(), Clock()
    fake.groups = {f"course:{COURSE}:student": ["alice", "bob"]}
    roles = course_roles(fake, clock)

    async def main() -> None:
        assert (await roles.caller(user("bob"), COURSE)).roles_in(COURSE) == {"student"}
        fake.groups[f"course:{COURSE}:student"] = ["alice"]  # bob dropped the course
        clock.now += 10  # within the TTL: the cached lists still name bob (documented bound)
        assert (await roles.caller(user("bob"), COURSE)).roles_in(COURSE) == {"student"}
        clock.now += 25  # past it
        assert (await roles.caller(user("bob"), COURSE)).roles_in(COURSE) == frozenset()
        assert (await roles.caller(user("alice"), COURSE)).roles_in(COURSE) == {"student"}

    asyncio.run(main())


@pytest.mark.parametrize("status", [500, 403])
def test_unreadable_groups_fall_back_to_per_user_lookups(status):
    fake, clock = FakeHubAPI(), Clock()
    fake.groups = {f"course:{COURSE}:student": ["alice"], f"course:{COURSE}:ta": ["alice"]}
    fake.user_groups = {"alice": [f"course:{COURSE}:student"]}
    fake.group_status = status
    roles = course_roles(fake, clock)

    async def main() -> None:
        # Nothing is taken from a partial read: alice's roles are her own groups'.
        assert (await roles.caller(user("alice"), COURSE)).roles_in(COURSE) == {"student"}
        assert "user:alice" in fake.calls
        groups_read = sum(c.startswith("group:") for c in fake.calls)
        clock.now += 1  # a failed read is not repeated at once (failed_ttl)
        await roles.caller(user("bob"), COURSE)
        assert sum(c.startswith("group:") for c in fake.calls) == groups_read
        clock.now += 5
        fake.group_status = 200
        assert (await roles.caller(user("carol"), COURSE)).roles_in(COURSE) == frozenset()
        assert sum(c.startswith("group:") for c in fake.calls) == groups_read + 3

    asyncio.run(main())


def test_a_group_model_without_members_is_not_an_empty_course():
    """A hub that hides the member list (a service role without read:groups) must not read as 'no one'."""
    fake, clock = FakeHubAPI(), Clock()
    fake.user_groups = {"alice": [f"course:{COURSE}:student"]}
    roles = course_roles(fake, clock)

    async def hidden(url: str) -> tuple[int, bytes]:
        return 200, json.dumps({"kind": "group", "name": url.rsplit("/", 1)[1]}).encode()

    roles.hub_get = hidden  # type: ignore[method-assign]

    async def main() -> None:
        assert await roles.course_members(COURSE) is None
        assert (await roles.caller(user("alice"), COURSE)).roles_in(COURSE) == {"student"}

    asyncio.run(main())


def test_without_a_course_the_caller_gets_all_their_roles_from_their_groups():
    fake, clock = FakeHubAPI(), Clock()
    fake.groups = {f"course:{COURSE}:student": ["alice"]}
    fake.user_groups = {"alice": [f"course:{COURSE}:student", "course:other:ta"]}
    roles = course_roles(fake, clock)

    async def main() -> None:
        caller = await roles.caller(user("alice"))
        assert caller.roles == {COURSE: frozenset({"student"}), "other": frozenset({"ta"})}
        assert not any(c.startswith("group:") for c in fake.calls)
        # Concurrent lookups of one user share a request; the answer is cached for the TTL.
        fake.calls.clear()
        roles._cache.clear()
        await asyncio.gather(*(roles.roles("alice") for _ in range(10)))
        assert fake.calls == ["user:alice"]

    asyncio.run(main())


def test_roles_ttl_bounds_a_per_user_answer_too():
    fake, clock = FakeHubAPI(), Clock()
    fake.user_groups = {"alice": [f"course:{COURSE}:ta"]}
    roles = course_roles(fake, clock)

    async def main() -> None:
        assert (await roles.roles("alice")) == {COURSE: frozenset({"ta"})}
        fake.user_groups["alice"] = []
        clock.now += 29
        assert (await roles.roles("alice")) == {COURSE: frozenset({"ta"})}
        clock.now += 2
        assert (await roles.roles("alice")) == {}

    asyncio.run(main())


def test_time_is_monotonic_by_default():
    assert CourseRoles(hub_auth(FakeHubAPI())).clock is time.monotonic


# --- known tokens: a submission at a deadline does not wait for the hub ---------------------------


def known_auth(fake: FakeHubAPI, clock: Clock, *, ttl: int = TOKEN_TTL, known_ttl: float = 3600.0,
               rate: float = 1000.0) -> ServiceHubAuth:
    auth = ServiceHubAuth(api_token="service-token", api_url="http://127.0.0.1:9/hub/api", cache_max_age=ttl,
                          base_url="/services/grading/", known_ttl=known_ttl, recheck_rate=rate, clock=clock)
    auth._api_request = fake.api_request  # type: ignore[method-assign]
    return auth


def test_the_known_token_defaults_are_bounded():
    assert TOKEN_TTL < KNOWN_TTL <= 8 * 3600
    assert RECHECKS_PER_SECOND > 0
    auth = make_hub_auth("/services/grading/")
    assert auth.known_ttl == KNOWN_TTL and auth.recheck_rate == RECHECKS_PER_SECOND


def test_a_token_is_known_only_after_the_hub_confirmed_it():
    fake, clock = FakeHubAPI(), Clock()
    fake.tokens["tok-alice"] = "alice"
    auth = known_auth(fake, clock)

    async def main() -> None:
        assert auth.known_user("tok-alice") is None  # never seen: the caller asks the hub
        assert auth.known_user("") is None
        assert await lookup(auth, "tok-mallory") is None  # the hub said no: never known
        assert auth.known_user("tok-mallory") is None
        assert (await lookup(auth, "tok-alice"))["name"] == "alice"
        assert auth.known_user("tok-alice")["name"] == "alice"
        # Only that token: not a prefix, a suffix, another case, or the same token in another session.
        for other in ("tok-alic", "tok-alicee", "TOK-ALICE", " tok-alice"):
            assert auth.known_user(other) is None
        assert auth.known_user("tok-alice", session_id="another-session") is None
        # Remembered by hash: the token itself is not kept.
        assert all("tok-alice" not in key for key in auth._known)
        assert fake.calls == ["token", "token"]

    asyncio.run(main())


def test_a_known_token_is_rechecked_in_the_background_and_forgotten_once_revoked():
    fake, clock = FakeHubAPI(), Clock()
    fake.tokens["tok-bob"] = "bob"
    auth = known_auth(fake, clock)

    async def main() -> None:
        assert (await lookup(auth, "tok-bob"))["name"] == "bob"
        clock.now += 10  # a fresh answer: used as it is, no re-check
        assert auth.known_user("tok-bob")["name"] == "bob"
        await asyncio.sleep(0.05)
        assert fake.calls == ["token"] and auth.rechecks == 0
        del fake.tokens["tok-bob"]  # revoked at the hub
        clock.now += TOKEN_TTL  # an old answer: served now, and the hub is asked again behind it
        assert auth.known_user("tok-bob")["name"] == "bob"
        assert auth.known_user("tok-bob")["name"] == "bob"  # still pending: one re-check, not two
        await asyncio.sleep(0.1)
        assert fake.calls == ["token", "token"] and auth.rechecks == 1
        assert auth.known_user("tok-bob") is None  # forgotten: the next request asks the hub
        assert await lookup(auth, "tok-bob") is None

    asyncio.run(main())


def test_a_recheck_that_confirms_the_token_renews_it():
    fake, clock = FakeHubAPI(), Clock()
    fake.tokens["tok-carol"] = "carol"
    auth = known_auth(fake, clock, known_ttl=100.0)

    async def main() -> None:
        await lookup(auth, "tok-carol")
        clock.now += 90
        assert auth.known_user("tok-carol")["name"] == "carol"
        await asyncio.sleep(0.05)
        clock.now += 90  # 180 s after the first answer, 90 s after the re-check's
        assert auth.known_user("tok-carol")["name"] == "carol"

    asyncio.run(main())


def test_a_known_token_expires_after_known_ttl():
    fake, clock = FakeHubAPI(), Clock()
    fake.tokens["tok-dan"] = "dan"
    auth = known_auth(fake, clock, known_ttl=100.0, rate=0.001)  # re-checks would never run in time

    async def main() -> None:
        await lookup(auth, "tok-dan")
        clock.now += 101
        assert auth.known_user("tok-dan") is None

    asyncio.run(main())


def test_rechecks_are_paced_and_survive_a_hub_that_does_not_answer():
    fake, clock = FakeHubAPI(), Clock()
    names = [f"s{i}" for i in range(6)]
    fake.tokens.update({f"tok-{n}": n for n in names})
    auth = known_auth(fake, clock, rate=20.0)  # one re-check every 50 ms

    async def main() -> None:
        for n in names:
            await lookup(auth, f"tok-{n}")
        clock.now += TOKEN_TTL + 1
        answer = fake.api_request

        async def hub_down(method: str, url: str, **kwargs) -> dict | None:
            fake.calls.append("down")
            raise ConnectionError("hub restarting")

        auth._api_request = hub_down  # type: ignore[method-assign]
        started = time.monotonic()
        for n in names:
            assert auth.known_user(f"tok-{n}")["name"] == n  # served although the hub is down
        while auth.rechecks < len(names):
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        assert fake.calls.count("down") == len(names)
        assert elapsed >= (len(names) - 1) / 20.0 * 0.9  # paced, not all at once
        # What the hub said last still stands while it does not answer.
        assert all(auth.known_user(f"tok-{n}")["name"] == n for n in names)
        auth._api_request = answer  # type: ignore[method-assign]

    asyncio.run(main())


def test_a_slow_answer_never_overrides_a_later_one():
    """A re-check asked before the hub said no (and answered after) must not bring the token back."""
    fake, clock = FakeHubAPI(), Clock()
    fake.tokens["tok-eve"] = "eve"
    auth = known_auth(fake, clock)

    async def main() -> None:
        await lookup(auth, "tok-eve")
        key = auth.cache_key("tok-eve")
        asked_early = clock.now + 1
        clock.now += 2
        auth._remember(key, clock.now, None)  # the hub said no (a fresh lookup)
        assert auth.known_user("tok-eve") is None
        auth._remember(key, asked_early, {"kind": "user", "name": "eve"})  # the slow re-check's yes
        assert auth.known_user("tok-eve") is None
        # Tokens the service never knew are not remembered as refused (a spray of forged tokens).
        assert await lookup(auth, "tok-forged-1") is None and await lookup(auth, "tok-forged-2") is None
        assert len(auth._known) == 1

    asyncio.run(main())
