"""Deep Linking 2.0: which requests staff may answer, what they can pick, the signed response.

An LMS sends an `LtiDeepLinkingRequest` when an instructor adds coursehub to a module. The request
is validated like any launch (`validation.py`); here are the checks deep linking adds (staff only,
`ltiResourceLink` accepted, the return URL on the platform's own origins: the response is a signed
token, so it must never be handed to another site), the items a course offers, and the
`LtiDeepLinkingResponse` JWT signed with the tool key (the key the platform fetches from our JWKS).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt

from ..courses import Course
from ..groups import STAFF_ROLES
from . import claims as C
from .keys import KeyPair
from .refusal import LaunchRefused
from .registry import origin_of
from .targets import textbook_pages
from .validation import ValidLaunch

RESOURCE_LINK_TYPE = "ltiResourceLink"
#: Line items we create carry this tag, so grade sync can tell them from the LMS's own columns.
LINEITEM_TAG = "coursehub"
#: Seconds a picker stays valid, and the response token's lifetime.
REQUEST_TTL = 1800
RESPONSE_TTL = 600


@dataclass(frozen=True)
class Choice:
    kind: str  # "assignment" | "textbook"
    item: str
    title: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.item}"


@dataclass(frozen=True)
class DeepLinkRequest:
    """What the picker needs to answer a validated deep linking request (kept server-side)."""

    platform: str
    issuer: str
    client_id: str
    deployment_id: str
    course_id: str
    return_url: str
    data: str | None
    accept_multiple: bool
    accept_lineitem: bool
    auto_create: bool
    title: str
    user: str
    expires_at: float


def choices(course: Course) -> list[Choice]:
    """The course's assignments, then its textbook pages: everything a link can open."""
    items = [Choice("assignment", a.id, a.title or a.id) for a in course.assignments]
    items += [Choice("textbook", page, page.replace("-", " ").replace("_", " ")) for page in textbook_pages(course)]
    return items


def check_request(launch: ValidLaunch, role: str, course: Course, *, now: float | None = None) -> DeepLinkRequest:
    """The request as the picker keeps it, or LaunchRefused (student, type or return URL refused)."""
    if role not in STAFF_ROLES:
        raise LaunchRefused("deep_link_not_staff", "Only the course's instructors and teaching assistants can "
                            "add coursehub items to the LMS course.", 403, detail=f"role={role}")
    settings = launch.deep_linking_settings
    if RESOURCE_LINK_TYPE not in settings.get("accept_types", []):
        raise LaunchRefused("deep_link_type_not_accepted", "The LMS asked for a kind of content coursehub does "
                            "not provide (it adds links to assignments and textbook pages).",
                            detail="accept_types lacks ltiResourceLink")
    return_url = settings["deep_link_return_url"]
    if origin_of(return_url) not in launch.registration.known_origins():
        raise LaunchRefused("deep_link_return_off_host", "The LMS asked to send the selection to an address "
                            "that is not registered for it.", 400, detail="deep_link_return_url not on a "
                            "registered origin")
    return DeepLinkRequest(
        platform=launch.registration.name, issuer=launch.issuer, client_id=launch.client_id,
        deployment_id=launch.deployment_id, course_id=course.id, return_url=return_url,
        data=settings.get("data"), accept_multiple=settings.get("accept_multiple") is True,
        accept_lineitem=settings.get("accept_lineitem") is not False,
        auto_create=bool(settings.get("auto_create")), title=settings.get("title") or "",
        user=launch.subject, expires_at=(now or time.time()) + REQUEST_TTL,
    )


def content_item(course: Course, choice: Choice, hub_url: str, *, lineitem: bool = True) -> dict:
    """An `ltiResourceLink` that launches `choice`: our launch reads the custom parameter."""
    item: dict = {
        "type": RESOURCE_LINK_TYPE,
        "title": choice.title,
        "url": f"{hub_url.rstrip('/')}/coursehub/open?{urlencode({choice.kind: choice.item})}",
        "custom": {choice.kind: choice.item},
    }
    assignment = course.assignment(choice.item) if choice.kind == "assignment" else None
    if assignment is not None:
        if lineitem and assignment.points:
            item["lineItem"] = {"scoreMaximum": assignment.points, "label": choice.title,
                                "resourceId": assignment.id, "tag": LINEITEM_TAG}
        if assignment.due is not None:
            item["submission"] = {"endDateTime": _iso(assignment.due)}
    return item


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def response_token(request: DeepLinkRequest, items: list[dict], key: KeyPair, *, now: float | None = None) -> str:
    """The LtiDeepLinkingResponse, signed with the tool key (kid in the header: our JWKS)."""
    iat = int(now if now is not None else time.time())
    claims: dict = {
        "iss": request.client_id, "aud": request.issuer, "iat": iat, "exp": iat + RESPONSE_TTL,
        "nonce": secrets.token_urlsafe(24),
        C.MESSAGE_TYPE: C.DEEP_LINKING_RESPONSE, C.VERSION: "1.3.0",
        C.DEPLOYMENT_ID: request.deployment_id, C.DL_CONTENT_ITEMS: items,
    }
    if request.data is not None:
        claims[C.DL_DATA] = request.data
    return jwt.encode(claims, key.private_pem, key.alg, headers={"kid": key.kid, "typ": "JWT"})
