"""What the LTI service clients need: the platform registration and the endpoints of a launch.

The hub side (coursehub.platform.lti) records these at launch; `sources.py` adapts its store and
the settings to these records, so the clients here depend on nothing but plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
NRPS_MEMBERSHIP = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, with default ports made explicit and the host lowercased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme, 0)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class ServiceRegistration:
    """One registered LMS as the grading side calls it: where tokens come from and which hosts may
    serve its services (built from the hub's `LaunchRegistration`)."""

    name: str
    issuer: str
    token_url: str
    #: Extra origins (scheme://host[:port]) allowed to serve AGS/NRPS besides the registered URLs.
    extra_origins: tuple[str, ...] = ()
    registered_urls: tuple[str, ...] = ()

    def allowed_origins(self) -> frozenset[tuple[str, str, int]]:
        urls = (self.issuer, self.token_url, *self.registered_urls, *self.extra_origins)
        return frozenset(origin(u) for u in urls if urlsplit(u).hostname)


@dataclass(frozen=True)
class LaunchServices:
    """The AGS/NRPS endpoints recorded at a person's newest launch in a course."""

    platform: ServiceRegistration
    client_id: str
    course_id: str
    username: str
    #: The person's LTI user id (`sub`) at this platform: AGS `userId`, NRPS `user_id`.
    lti_user_id: str
    context_id: str = ""
    lineitems_url: str | None = None
    lineitem_url: str | None = None
    nrps_url: str | None = None
    ags_scopes: tuple[str, ...] = field(default_factory=tuple)
