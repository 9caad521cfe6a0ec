"""A JWKS cache per LMS platform: fetched without blocking the hub, shared by concurrent launches.

Upstream builds a fresh `PyJWKClient` (synchronous urllib) for every launch, so a class of 300
students makes 300 blocking fetches on the hub's event loop. Here one cache per platform keeps the
keys for `cache_seconds`; launches arriving together wait on one in-flight fetch; an unknown `kid`
(key rotation) triggers one refetch, at most every `min_refetch_seconds`; every fetch has
timeouts and a size limit, and a failed refresh keeps serving the keys already known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import jwt

from .. import httpclient

log = logging.getLogger("JupyterHub").getChild("coursehub.lti.jwks")

#: Only public-key families; a symmetric ("oct") key in a JWKS is ignored.
ASYMMETRIC_KTY = {"RSA", "EC", "OKP"}
MAX_JWKS_BYTES = 512 * 1024

Fetcher = Callable[[str], Awaitable[bytes]]


class JwksError(Exception):
    """The platform's keys could not be fetched or the token names no usable key."""


class UnknownKeyError(JwksError):
    pass


async def fetch_url(url: str, connect_timeout: float = 3, request_timeout: float = 5) -> bytes:
    """The JWKS document's bytes through the shared client (no redirects, at most MAX_JWKS_BYTES)."""
    try:
        resp = await httpclient.request("GET", url, headers={"Accept": "application/json"},
                                        connect_timeout=connect_timeout, request_timeout=request_timeout,
                                        max_bytes=MAX_JWKS_BYTES)
    except httpclient.ResponseTooLarge:
        raise JwksError("JWKS response is too large") from None
    if resp.status == httpclient.NO_RESPONSE:
        raise JwksError(f"JWKS endpoint unreachable: {resp.error.split(':', 1)[0] or 'no response'}")
    if not resp.ok:
        raise JwksError(f"JWKS endpoint answered HTTP {resp.status}")
    return resp.body


class JwksCache:
    """The signing keys of one platform, by `kid`."""

    def __init__(self, url: str, *, cache_seconds: float = 300, min_refetch_seconds: float = 10,
                 fetcher: Fetcher | None = None):
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self._fetcher = fetcher or fetch_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_miss_refetch: float = float("-inf")
        self._inflight: asyncio.Future | None = None
        #: Number of HTTP fetches made (for the benchmark and tests).
        self.fetches = 0

    def _fresh(self) -> bool:
        return self._fetched_at is not None and time.monotonic() - self._fetched_at < self.cache_seconds

    async def get_key(self, kid: str | None) -> jwt.PyJWK:
        if not self._fresh():
            await self._refresh()
        key = self._pick(kid)
        if key is None and time.monotonic() - self._last_miss_refetch >= self.min_refetch_seconds:
            # Maybe the platform rotated its keys: look once more (at most every min_refetch_seconds,
            # so tokens with made-up key ids cannot turn into a fetch storm).
            self._last_miss_refetch = time.monotonic()
            await self._refresh(force=True)
            key = self._pick(kid)
        if key is None:
            raise UnknownKeyError(f"no key with kid {kid!r} in the platform's JWKS")
        return key

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, force: bool = False) -> None:
        """Fetch the keys; launches arriving meanwhile wait for this one fetch."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            return
        if not force and self._fresh():
            return
        self._inflight = asyncio.get_running_loop().create_future()
        try:
            keys = await self._load()
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._inflight.set_result(None)
        except JwksError as e:
            if self._keys:
                log.warning("JWKS refresh from %s failed (%s); keeping %d known keys", self.url, e, len(self._keys))
                # Back off: the known keys count as fresh for another min_refetch_seconds, so an
                # outage does not make every launch wait for a fetch timeout.
                self._fetched_at = time.monotonic() - max(self.cache_seconds - self.min_refetch_seconds, 0)
                self._inflight.set_result(None)
            else:
                self._inflight.set_exception(e)
                self._inflight.exception()  # mark retrieved: waiters re-raise it themselves
                raise
        finally:
            self._inflight = None

    async def _load(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        body = await self._fetcher(self.url)
        try:
            data = json.loads(body)
            entries = data["keys"]
            assert isinstance(entries, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise JwksError("JWKS endpoint did not return a JSON key set") from None
        keys: dict[str, jwt.PyJWK] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("kty") not in ASYMMETRIC_KTY:
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry.get("kid") or f"#{i}"] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                log.warning("ignoring an unusable key (kid %r) in %s", entry.get("kid"), self.url)
        if not keys:
            raise JwksError("JWKS holds no usable public signing key")
        log.info("fetched JWKS from %s: %d key(s)", self.url, len(keys))
        return keys
