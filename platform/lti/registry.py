"""Registered LMS platforms: who may launch into this hub, and with which keys.

Built from `auth.lti.platforms` in the settings (plus the built-in local LMS in local mode).
A launch is matched by (issuer, client id); its deployment must be one the registration lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .jwks import JwksCache

#: Algorithms a registration may allow: asymmetric only (never "none", never HMAC).
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


@dataclass(frozen=True)
class LaunchRegistration:
    """A registered LMS as the hub checks launches against it (client ids, deployments, keys); the
    grading side's `ServiceRegistration` is the part of it that LMS service calls need."""

    name: str
    issuer: str
    client_ids: tuple[str, ...]
    deployment_ids: tuple[str, ...]
    auth_login_url: str
    jwks_url: str
    token_url: str
    algorithms: tuple[str, ...] = ("RS256",)
    #: True for the built-in local LMS page.
    local: bool = False
    #: Further origins (scheme://host) the platform serves from (settings' `service_origins`).
    origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = set(self.algorithms) - ASYMMETRIC_ALGORITHMS
        if bad:
            raise ValueError(f"platform {self.name!r}: only asymmetric algorithms are allowed, not {sorted(bad)}")

    @classmethod
    def from_dict(cls, d: dict) -> LaunchRegistration:
        return cls(
            name=d["name"], issuer=d["issuer"], client_ids=tuple(d["client_ids"]),
            deployment_ids=tuple(d["deployment_ids"]), auth_login_url=d["auth_login_url"],
            jwks_url=d["jwks_url"], token_url=d.get("token_url", ""),
            algorithms=tuple(d.get("algorithms") or ("RS256",)), local=bool(d.get("local", False)),
            origins=tuple(d.get("service_origins") or ()),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name, "issuer": self.issuer, "client_ids": list(self.client_ids),
            "deployment_ids": list(self.deployment_ids), "auth_login_url": self.auth_login_url,
            "jwks_url": self.jwks_url, "token_url": self.token_url, "algorithms": list(self.algorithms),
            "local": self.local, "service_origins": list(self.origins),
        }

    def known_origins(self) -> set[str]:
        """Origins this platform was registered with: where it may send browsers back to."""
        urls = (self.issuer, self.auth_login_url, self.jwks_url, self.token_url, *self.origins)
        return {o for o in (origin_of(u) for u in urls) if o}


def origin_of(url: str) -> str:
    """scheme://host[:port], lower-cased, of an http(s) URL; '' for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port and port != default else "")


@dataclass
class Registry:
    registrations: list[LaunchRegistration]
    jwks_cache_seconds: float = 300
    min_refetch_seconds: float = 10
    _jwks: dict[str, JwksCache] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [r.name for r in self.registrations]
        if len(names) != len(set(names)):
            raise ValueError("LTI platform names must be unique")

    def add(self, registration: LaunchRegistration) -> None:
        """A registration made while the hub runs (dynamic registration); names stay unique."""
        if self.by_name(registration.name) is not None:
            raise ValueError(f"an LTI platform named {registration.name!r} is already registered")
        self.registrations.append(registration)

    def by_name(self, name: str) -> LaunchRegistration | None:
        return next((r for r in self.registrations if r.name == name), None)

    def find(self, issuer: str, client_id: str | None) -> LaunchRegistration | None:
        """The registration for (issuer, client id). Without a client id (it is optional in the
        login initiation) only an issuer with a single registration and client id is unambiguous."""
        candidates = [r for r in self.registrations if r.issuer == issuer]
        if client_id:
            return next((r for r in candidates if client_id in r.client_ids), None)
        if len(candidates) == 1 and len(candidates[0].client_ids) == 1:
            return candidates[0]
        return None

    def knows_issuer(self, issuer: str) -> bool:
        return any(r.issuer == issuer for r in self.registrations)

    def jwks(self, registration: LaunchRegistration) -> JwksCache:
        cache = self._jwks.get(registration.name)
        if cache is None:
            cache = self._jwks[registration.name] = JwksCache(
                registration.jwks_url, cache_seconds=self.jwks_cache_seconds,
                min_refetch_seconds=self.min_refetch_seconds,
            )
        return cache
