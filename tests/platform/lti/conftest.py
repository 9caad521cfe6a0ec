"""Unit-test fixtures for the LTI modules: a platform key, a registry with an in-process JWKS."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from coursehub.platform.lti import claims as C
from coursehub.platform.lti.keys import generate_key_pair
from coursehub.platform.lti.registry import LaunchRegistration, Registry
from coursehub.platform.lti.store import LtiStore
from coursehub.platform.lti.validation import LaunchValidator

ISS = "https://lms.example.edu"
CLIENT = "tool-1"


class Platform:
    """A platform key pair, its JWKS served by an in-process fetcher that counts calls."""

    def __init__(self):
        self.keys = [generate_key_pair()]
        self.fetches = 0
        self.fail = False

    async def fetch(self, url: str) -> bytes:
        self.fetches += 1
        if self.fail:
            from coursehub.platform.lti.jwks import JwksError

            raise JwksError("down")
        return json.dumps({"keys": [k.public_jwk() for k in self.keys]}).encode()

    def claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": ISS, "aud": CLIENT, "sub": "s-1", "iat": now, "exp": now + 300, "nonce": "n-1",
            C.MESSAGE_TYPE: C.RESOURCE_LINK_REQUEST, C.VERSION: "1.3.0", C.DEPLOYMENT_ID: "d-1",
            C.TARGET_LINK_URI: "https://hub.example/hub/coursehub/open", C.RESOURCE_LINK: {"id": "rl-1"},
            C.ROLES: [], C.CONTEXT: {"id": "ctx", "label": "CTX"},
        }
        claims.update(changes)
        return claims

    def token(self, claims: dict | None = None, key=None, **changes) -> str:
        key = key or self.keys[-1]
        return jwt.encode(claims or self.claims(**changes), key.private_pem, "RS256", headers={"kid": key.kid})


@pytest.fixture
def platform():
    return Platform()


@pytest.fixture
def registration():
    return LaunchRegistration(name="lms", issuer=ISS, client_ids=(CLIENT,), deployment_ids=("d-1",),
                        auth_login_url=f"{ISS}/auth", jwks_url=f"{ISS}/jwks", token_url=f"{ISS}/token")


@pytest.fixture
def store(tmp_path):
    s = LtiStore(f"sqlite:///{tmp_path / 'lti.sqlite'}")
    yield s
    s.dispose()


@pytest.fixture
def validator(platform, registration, store):
    registry = Registry([registration], min_refetch_seconds=0)
    registry.jwks(registration)._fetcher = platform.fetch
    store.issue_nonce("n-1", 600)
    return LaunchValidator(registry, leeway=60, max_age=600, consume_nonce=store.consume_nonce)
