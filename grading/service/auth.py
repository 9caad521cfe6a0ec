"""Who is calling: the hub says (token or OAuth cookie), and the hub's groups say their course roles.

Two answers come from the hub, and both are cached briefly so that a deadline does not turn into
two hub requests per upload:

- **The token** (`GET /hub/api/user` with the caller's token): `ServiceHubAuth` keeps the answer
  for `TOKEN_TTL` seconds, keyed by the SHA-256 of the token (never the token itself), so one
  token's answer never serves another token. A revoked token keeps working here for at most
  `TOKEN_TTL` seconds. Concurrent requests with the same uncached token share one hub request.
- **Course roles**: `CourseRoles` reads a course's members from its groups
  (`GET /hub/api/groups/course:<id>:<role>`, one request per role, with the service's own token:
  `read:groups`, never admin) when a request names that course, and keeps them for `ttl` seconds
  (`ROLES_TTL`): at a deadline a whole class is known after three hub requests instead of one per
  student. A user the snapshot does not list (they joined after it was taken, or the groups could
  not be read) is looked up individually (`GET /hub/api/users/<name>`), cached for the same `ttl`.
  Either way a role granted or removed in the hub applies here within `ttl` seconds.
- **Known tokens at a deadline**: a token the hub confirmed in the last `KNOWN_TTL` seconds (a
  student's server shows itself when it fetches the assignment at launch) authenticates a
  *submission* at once, without waiting for the hub; if the hub's answer is older than `TOKEN_TTL`,
  it is asked again in the background, at most `RECHECKS_PER_SECOND`, and a token it no longer
  knows is forgotten at once (its next request is refused). So a deadline does not turn into one hub
  request per student in the same minute, and submissions keep being taken while the hub restarts.
  A revoked token can still hand in submissions until its re-check is answered: the uploads that
  arrive before, at most two at a time per student (`StudentSlots`). Every other request (listing, fetching,
  feedback, anything staff do) waits for an answer at most `TOKEN_TTL` seconds old, as before.

Course roles come only from `course:<id>:<role>` groups; nothing in the request can add to them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuth
from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from coursehub.platform.groups import COURSE_ROLES, course_group, courses_of

from .core import Caller

log = logging.getLogger("coursehub.grading.service")

#: Seconds the hub's answer about a token is reused (a revoked token works here at most this long).
TOKEN_TTL = 30
#: Seconds a token the hub confirmed may still authenticate a submission without waiting for the
#: hub (it is re-checked in the background); a launch to a deadline in the same afternoon.
KNOWN_TTL = 4 * 3600
#: Background re-checks of known tokens with the hub, at most this many per second (at 3 ms of hub
#: CPU each, about 3 % of a core while there are any; 3,000 students are re-checked in 5 minutes).
RECHECKS_PER_SECOND = 10.0
#: Seconds course roles (a course's member lists, or one user's groups) are reused.
ROLES_TTL = 30.0
#: Seconds a course whose groups could not be read is not asked again (its users are looked up one by one).
FAILED_TTL = 5.0
#: A bound on cached users, not a policy: beyond it the oldest half is dropped.
MAX_CACHED_USERS = 50_000


class ServiceHubAuth(HubOAuth):
    """HubOAuth whose token answers are cached by token hash for `cache_max_age` seconds (HubAuth's
    own cache) and looked up once when many requests bring the same uncached token at once; it also
    remembers the tokens the hub confirmed, for submissions (`known_user`)."""

    def __init__(self, *, known_ttl: float = KNOWN_TTL, recheck_rate: float = RECHECKS_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic, **kwargs: Any):
        super().__init__(**kwargs)
        self._inflight: dict[str, asyncio.Future] = {}
        self.known_ttl = known_ttl
        self.recheck_rate = recheck_rate
        self.clock = clock
        #: cache key (session id and token hash, never the token) -> (when the hub said so, its model)
        self._known: dict[str, tuple[float, dict]] = {}
        #: cache key -> (token, session id) waiting for a background re-check
        self._pending: dict[str, tuple[str, str]] = {}
        self._rechecker: asyncio.Future | None = None
        #: Background re-checks answered (for tests and the benchmark).
        self.rechecks = 0

    @staticmethod
    def cache_key(token: str, session_id: str = "") -> str:
        """HubAuth's own cache key for a token: its SHA-256, never the token itself."""
        return f"token:{session_id}:{hashlib.sha256(token.encode('utf8', 'replace')).hexdigest()}"

    def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):  # noqa: ANN001, ANN201 - HubAuth's signature
        if sync or not use_cache:
            return super().user_for_token(token, use_cache=use_cache, session_id=session_id, sync=sync)
        return self._shared_lookup(token, session_id)

    async def _shared_lookup(self, token: str, session_id: str) -> dict | None:
        key = self.cache_key(token, session_id)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ask(token, session_id, key, use_cache=True))
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._inflight.pop(k, None) if self._inflight.get(k) is t else None)
        return await asyncio.shield(task)

    async def _ask(self, token: str, session_id: str, key: str, use_cache: bool) -> dict | None:
        """HubAuth's lookup; an answer that came from the hub (not HubAuth's cache) is remembered."""
        from_hub = not use_cache or key not in self.cache
        started = self.clock()
        model = await super().user_for_token(token, use_cache=use_cache, session_id=session_id, sync=False)
        if from_hub:
            self._remember(key, started, model)
        return model

    def _remember(self, key: str, when: float, model: dict | None) -> None:
        """Keep the hub's answer asked for at `when`, unless an answer asked for later is kept
        (a slow re-check must not bring back a token the hub has since said no to)."""
        kept = self._known.get(key)
        if kept is not None and kept[0] > when:
            return
        if not model:
            if key in self.cache:  # revoked: forgotten here and in HubAuth's cache
                del self.cache[key]
            if kept is not None:
                self._known[key] = (when, None)
            return
        self._known[key] = (when, model)
        if len(self._known) > MAX_CACHED_USERS:
            for k, _ in sorted(self._known.items(), key=lambda kv: kv[1][0])[: len(self._known) // 2]:
                self._known.pop(k, None)

    def known_user(self, token: str, session_id: str = "") -> dict | None:
        """The hub's model for a token it confirmed in the last `known_ttl` seconds, without asking
        it now (for submissions only); None if the token is not known (ask the hub as usual). An
        answer older than `cache_max_age` is re-checked with the hub in the background."""
        if not token:
            return None
        key = self.cache_key(token, session_id)
        hit = self._known.get(key)
        if hit is None or hit[1] is None:
            return None
        age = self.clock() - hit[0]
        if age >= self.known_ttl:
            self._known.pop(key, None)
            return None
        if age >= self.cache_max_age:
            self._recheck_later(key, token, session_id)
        return hit[1]

    def _recheck_later(self, key: str, token: str, session_id: str) -> None:
        if key in self._pending:
            return
        self._pending[key] = (token, session_id)
        if self._rechecker is None or self._rechecker.done():
            self._rechecker = asyncio.ensure_future(self._recheck_pending())

    async def _recheck_pending(self) -> None:
        """Ask the hub about each pending token again, oldest request first, at `recheck_rate`."""
        while self._pending:
            key, (token, session_id) = next(iter(self._pending.items()))
            try:
                await self._ask(token, session_id, key, use_cache=False)
            except Exception as e:  # noqa: BLE001 - the hub did not answer: keep what it said last
                log.warning("re-checking a known token with the hub failed: %s", e)
            finally:
                self._pending.pop(key, None)
                self.rechecks += 1
            await asyncio.sleep(1.0 / self.recheck_rate)


class CourseRoles:
    """Course roles of hub users, read from the course groups with the service's token, cached."""

    def __init__(self, hub_auth: HubOAuth, ttl: float = ROLES_TTL, failed_ttl: float = FAILED_TTL,
                 clock: Callable[[], float] = time.monotonic):
        self.hub_auth = hub_auth
        self.ttl = ttl
        self.failed_ttl = failed_ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, dict[str, frozenset[str]]]] = {}
        self._members: dict[str, tuple[float, dict[str, frozenset[str]] | None]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        #: Hub requests made, by kind ("user", "group"): for tests and the benchmark's notes.
        self.requests: dict[str, int] = {"user": 0, "group": 0}

    # --- one user ----------------------------------------------------------------------------
    async def roles(self, username: str) -> dict[str, frozenset[str]]:
        """All course roles of `username` (their own groups)."""
        hit = self._cache.get(username)
        if hit and self.clock() - hit[0] < self.ttl:
            return hit[1]
        return await self._once(("user", username), lambda: self._fetch_user(username))

    async def _fetch_user(self, username: str) -> dict[str, frozenset[str]]:
        started = self.clock()
        url = url_path_join(self.hub_auth.api_url, "users", quote(username, safe=""))
        self.requests["user"] += 1
        model = await self.hub_auth._api_request("GET", url, allow_403=True)
        frozen = {c: frozenset(r) for c, r in courses_of((model or {}).get("groups", [])).items()}
        self._cache[username] = (started, frozen)
        if len(self._cache) > MAX_CACHED_USERS:
            for key, _ in sorted(self._cache.items(), key=lambda kv: kv[1][0])[: len(self._cache) // 2]:
                self._cache.pop(key, None)
        return frozen

    # --- a whole course ----------------------------------------------------------------------
    async def course_members(self, course_id: str) -> dict[str, frozenset[str]] | None:
        """username -> roles in `course_id` from the course's groups; None if they could not be read."""
        hit = self._members.get(course_id)
        now = self.clock()
        if hit and now - hit[0] < (self.ttl if hit[1] is not None else self.failed_ttl):
            return hit[1]
        return await self._once(("course", course_id), lambda: self._fetch_course(course_id))

    async def _fetch_course(self, course_id: str) -> dict[str, frozenset[str]] | None:
        started = self.clock()
        lists = await asyncio.gather(*(self.group_members(course_group(course_id, role)) for role in COURSE_ROLES),
                                     return_exceptions=True)
        members: dict[str, set[str]] | None = {}
        for role, users in zip(COURSE_ROLES, lists, strict=True):
            if users is None or isinstance(users, BaseException):
                if isinstance(users, BaseException):
                    log.warning("reading the %s group of %s failed: %s", role, course_id, users)
                members = None  # incomplete: nobody's roles in this course are taken from it
                break
            for name in users:
                members.setdefault(name, set()).add(role)
        frozen = None if members is None else {u: frozenset(r) for u, r in members.items()}
        self._members[course_id] = (started, frozen)
        return frozen

    async def group_members(self, group: str) -> list[str] | None:
        """Member names of a hub group ([] if it does not exist yet); None if the hub did not say."""
        self.requests["group"] += 1
        status, body = await self.hub_get(url_path_join(self.hub_auth.api_url, "groups", quote(group, safe="")))
        if status == 404:
            return []  # a course group appears with the first launch in that role
        if status != 200:
            log.warning("the hub answered %s for the group %s", status, group)
            return None
        try:
            users = json.loads(body).get("users")
        except (ValueError, AttributeError):
            return None
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            return None  # e.g. the service's role lacks read:groups: the model has no member list
        return users

    async def hub_get(self, url: str) -> tuple[int, bytes]:
        """GET a hub API URL with the service's token: (status, body). A seam for tests."""
        auth = self.hub_auth
        ssl = None
        if auth.certfile or auth.keyfile:
            from jupyterhub.utils import make_ssl_context

            ssl = make_ssl_context(auth.keyfile, auth.certfile, cafile=auth.client_ca)
        req = HTTPRequest(url, headers={"Authorization": f"token {auth.api_token}"}, request_timeout=30,
                          ssl_options=ssl)
        r = await AsyncHTTPClient().fetch(req, raise_error=False)
        return r.code, r.body or b""

    # --- who is calling ----------------------------------------------------------------------
    async def caller(self, model: dict, course_id: str | None = None) -> Caller | None:
        """The Caller for a hub user model; None for services and anything that is not a user.

        With `course_id` (a request about that one course), the caller's roles may come from the
        course's member lists; the Caller then holds that course's roles only, which is all such a
        request may use. Otherwise (or if the lists do not name the user) they are looked up."""
        if model.get("kind", "user") != "user" or not model.get("name"):
            return None
        name = model["name"]
        hit = self._cache.get(name)
        if course_id is not None and not (hit and self.clock() - hit[0] < self.ttl):
            members = await self.course_members(course_id)
            if members is not None and name in members:
                return Caller(name, {course_id: members[name]})
        return Caller(name, await self.roles(name))

    async def _once(self, key: tuple[str, str], fetch: Callable[[], Awaitable[Any]]) -> Any:
        """Concurrent lookups of the same thing share one hub request."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._inflight.pop(k, None) if self._inflight.get(k) is t else None)
        return await asyncio.shield(task)


def make_hub_auth(service_prefix: str, cache_max_age: int = TOKEN_TTL) -> HubOAuth:
    """The service's HubOAuth from the JUPYTERHUB_* environment the hub gives a service. Token
    answers are cached for `cache_max_age` seconds by token hash: a revoked token stops working
    within that time."""
    return ServiceHubAuth(cache_max_age=cache_max_age, base_url=service_prefix)
