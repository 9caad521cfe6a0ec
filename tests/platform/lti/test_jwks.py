"""The JWKS cache: one fetch for a burst of launches, one refetch on key rotation, rate limits."""

from __future__ import annotations

import asyncio
import json

import pytest

from coursehub.platform.lti.jwks import JwksCache, JwksError, UnknownKeyError
from coursehub.platform.lti.keys import generate_key_pair


class Endpoint:
    def __init__(self, keys, delay: float = 0.01):
        self.keys = keys
        self.calls = 0
        self.delay = delay
        self.body: bytes | None = None
        self.error: Exception | None = None

    async def __call__(self, url: str) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.error:
            raise self.error
        return self.body or json.dumps({"keys": [k.public_jwk() for k in self.keys]}).encode()


async def test_burst_of_launches_fetches_once():
    key = generate_key_pair()
    ep = Endpoint([key])
    cache = JwksCache("https://lms/jwks", fetcher=ep)
    found = await asyncio.gather(*(cache.get_key(key.kid) for _ in range(100)))
    assert ep.calls == 1 and cache.fetches == 1
    assert all(f.key_id == key.kid for f in found)


async def test_unknown_kid_refetches_once_then_rate_limited():
    old, new = generate_key_pair(), generate_key_pair()
    ep = Endpoint([old])
    cache = JwksCache("https://lms/jwks", fetcher=ep, min_refetch_seconds=60)
    await cache.get_key(old.kid)
    ep.keys = [old, new]  # rotation on the platform
    assert (await cache.get_key(new.kid)).key_id == new.kid
    assert ep.calls == 2
    # Unknown kids (attacks, typos) cannot make the hub hammer the platform.
    for _ in range(20):
        with pytest.raises(UnknownKeyError):
            await cache.get_key("forged")
    assert ep.calls == 2


async def test_unknown_kid_refetch_when_allowed():
    key = generate_key_pair()
    ep = Endpoint([key])
    cache = JwksCache("https://lms/jwks", fetcher=ep, min_refetch_seconds=0)
    await cache.get_key(key.kid)
    with pytest.raises(UnknownKeyError):
        await cache.get_key("forged")
    assert ep.calls == 2


async def test_expired_cache_refreshes_and_outage_keeps_known_keys():
    key = generate_key_pair()
    ep = Endpoint([key])
    cache = JwksCache("https://lms/jwks", fetcher=ep, cache_seconds=0, min_refetch_seconds=0)
    await cache.get_key(key.kid)
    ep.error = JwksError("JWKS endpoint answered HTTP 503")
    assert (await cache.get_key(key.kid)).key_id == key.kid  # stale keys beat no keys
    assert ep.calls == 2


async def test_first_fetch_failure_is_an_error_for_every_waiter():
    ep = Endpoint([], delay=0.05)
    ep.error = JwksError("JWKS endpoint unreachable: TimeoutError")
    cache = JwksCache("https://lms/jwks", fetcher=ep)
    results = await asyncio.gather(*(cache.get_key("k") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, JwksError) for r in results)
    assert ep.calls == 1


@pytest.mark.parametrize("body", [b"<html>", b'{"no": "keys"}', b'{"keys": []}',
                                  b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}'])
async def test_garbage_and_symmetric_keys_are_refused(body):
    ep = Endpoint([])
    ep.body = body
    cache = JwksCache("https://lms/jwks", fetcher=ep)
    with pytest.raises(JwksError):
        await cache.get_key("h")


async def test_real_http_fetch_has_timeouts():
    """fetch_url against a port that accepts but never answers: a JwksError, not a hang."""
    import socket

    from coursehub.platform.lti.jwks import fetch_url

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        with pytest.raises(JwksError):
            await fetch_url(f"http://127.0.0.1:{srv.getsockname()[1]}/jwks", connect_timeout=0.5,
                            request_timeout=0.5)
    finally:
        srv.close()
