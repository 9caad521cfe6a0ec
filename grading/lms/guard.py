"""Service URLs must belong to the registered platform.

A launch is signed by the platform, but URLs also arrive in line-item responses and NRPS `Link`
headers; a compromised or misconfigured LMS (or a bug) must not make us send bearer tokens or
grades anywhere else. Plain http is only accepted for loopback hosts (local fake LMS in tests).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .records import ServiceRegistration, origin

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ForeignServiceURL(ValueError):
    """A service URL outside the registered platform: refused, nothing sent."""


def check_service_url(url: str, platform: ServiceRegistration) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ForeignServiceURL(f"refused service URL {url!r}: not an absolute http(s) URL")
    if parts.username or parts.password:
        raise ForeignServiceURL(f"refused service URL for platform {platform.name!r}: credentials in URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ForeignServiceURL(f"refused service URL {url!r}: https is required")
    if origin(url) not in platform.allowed_origins():
        scheme, host, port = origin(url)
        raise ForeignServiceURL(
            f"refused service URL on {host}:{port}: not a host of the registered platform {platform.name!r} "
            f"(add it to the platform's service origins if the LMS really serves it)")
    return url
