"""OAuth2 client-credentials access tokens for LTI Advantage services (1EdTech Security Framework).

The client authenticates with a JWT assertion signed by the tool's private key: iss = sub =
client id, aud = the token URL, a short expiry and a fresh jti, the key's `kid` in the header.
Tokens are cached per (token URL, client id, scopes) until shortly before they expire; a 401 from
a service drops the cached token so the next call gets a new one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt

from .httpclient import Http
from .retry import retry_after_seconds

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class ToolKey:
    """The tool's signing key: PEM private key and its key id (published in the tool's JWKS)."""

    private_pem: bytes
    kid: str
    alg: str = "RS256"


class TokenError(RuntimeError):
    """The platform refused to issue a token (the message says why, never the token)."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class _Cached:
    token: str
    expires_at: float


class TokenClient:
    def __init__(self, key: ToolKey, http: Http | None = None, clock: Callable[[], float] = time.time,
                 assertion_lifetime: int = 300, margin: float = 30.0):
        self.key = key
        self.http = http or Http()
        self.clock = clock
        self.assertion_lifetime = assertion_lifetime
        self.margin = margin
        self._cache: dict[tuple[str, str, str], _Cached] = {}

    def client_assertion(self, token_url: str, client_id: str) -> str:
        now = int(self.clock())
        claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now,
                  "exp": now + self.assertion_lifetime, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key.private_pem, algorithm=self.key.alg, headers={"kid": self.key.kid})

    async def token(self, token_url: str, client_id: str, scopes: Iterable[str]) -> str:
        scope = " ".join(sorted(set(scopes)))
        key = (token_url, client_id, scope)
        hit = self._cache.get(key)
        if hit and self.clock() < hit.expires_at:
            return hit.token
        body = urlencode({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                          "client_assertion": self.client_assertion(token_url, client_id), "scope": scope})
        resp = await self.http.request("POST", token_url, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        if resp.status != 200:
            raise TokenError(f"token request to {token_url} failed: HTTP {resp.status} {resp.error} "
                             f"{_oauth_error(resp.body)}".strip(),
                             resp.status, retry_after_seconds(resp.header("Retry-After"), self.clock()))
        try:
            data = json.loads(resp.body)
            token = str(data["access_token"])
            lifetime = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as e:
            raise TokenError(f"token response from {token_url} is not a valid token: {type(e).__name__}") from None
        margin = min(self.margin, lifetime / 2)
        self._cache[key] = _Cached(token, self.clock() + lifetime - margin)
        return token

    def invalidate(self, token_url: str, client_id: str, scopes: Iterable[str]) -> None:
        self._cache.pop((token_url, client_id, " ".join(sorted(set(scopes)))), None)


def _oauth_error(body: bytes) -> str:
    """The OAuth error code and description from a token error response (they carry no secrets)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    return " ".join(str(data.get(k, ""))[:200] for k in ("error", "error_description")).strip()
