"""Who is calling: the hub says (token or OAuth cookie), and the hub's groups say their course roles.

The service asks the hub, with its own scoped token (`read:users:groups`, never admin), for the
caller's groups and keeps the answer for `groups_ttl` seconds. Course roles come only from
`course:<id>:<role>` groups; nothing in the request can add to them.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuth
from jupyterhub.utils import url_path_join

from coursehub.platform.groups import courses_of

from .core import Caller


class CourseRoles:
    """Course roles of hub users, looked up with the service's token and cached briefly."""

    def __init__(self, hub_auth: HubOAuth, ttl: float = 30.0):
        self.hub_auth = hub_auth
        self.ttl = ttl
        self._cache: dict[str, tuple[float, dict[str, frozenset[str]]]] = {}

    async def roles(self, username: str) -> dict[str, frozenset[str]]:
        hit = self._cache.get(username)
        now = time.monotonic()
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        url = url_path_join(self.hub_auth.api_url, "users", quote(username, safe=""))
        model = await self.hub_auth._api_request("GET", url, allow_403=True)
        frozen = {c: frozenset(r) for c, r in courses_of((model or {}).get("groups", [])).items()}
        self._cache[username] = (now, frozen)
        if len(self._cache) > 50_000:  # a bound, not a policy: drop the oldest half
            for key, _ in sorted(self._cache.items(), key=lambda kv: kv[1][0])[: len(self._cache) // 2]:
                self._cache.pop(key, None)
        return frozen

    async def caller(self, model: dict) -> Caller | None:
        """The Caller for a hub user model; None for services and anything that is not a user."""
        if model.get("kind", "user") != "user" or not model.get("name"):
            return None
        return Caller(model["name"], await self.roles(model["name"]))


def make_hub_auth(service_prefix: str, cache_max_age: int = 60) -> HubOAuth:
    """HubOAuth from the JUPYTERHUB_* environment the hub gives a service. Token answers are cached
    for `cache_max_age` seconds: a revoked token stops working within that time."""
    return HubOAuth(cache_max_age=cache_max_age, base_url=service_prefix)
