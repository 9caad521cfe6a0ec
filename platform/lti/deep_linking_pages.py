"""The deep linking picker: shown after a validated LtiDeepLinkingRequest, answered by one POST.

The validated request stays on the hub (an in-memory table with a lifetime, one use); the browser
only holds its random id, in a signed cookie scoped to the return endpoint, plus JupyterHub's XSRF
token in the form. So a picker cannot be answered from another browser, twice, or by a page that
forges the POST; and the choice can only be items of the request's own course. No hub session is
created: choosing links is not opening notebooks.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join

from ..courses import Course
from .audit import audit
from .deep_linking import DeepLinkRequest, check_request, choices, content_item, response_token
from .pages import PageMixin
from .refusal import LaunchRefused
from .validation import ValidLaunch
from .web import SecurityHeaders, public_origin, public_scheme

COOKIE = "coursehub-dl"
#: Requests kept at most; the oldest go first (a picker left open is cheap, but not unbounded).
MAX_PENDING = 1000
RETURN_PATH = "lti13/deep_link"


def pending(auth: Any) -> dict[str, DeepLinkRequest]:
    table = getattr(auth, "_coursehub_deep_links", None)
    if table is None:
        table = auth._coursehub_deep_links = {}
    now = time.time()
    for key in [k for k, r in table.items() if r.expires_at < now]:
        del table[key]
    while len(table) >= MAX_PENDING:
        del table[next(iter(table))]
    return table


async def show_picker(handler: Any, launch: ValidLaunch, course: Course, role: str, ids: dict) -> None:
    """Answer a validated deep linking request: the picker, or the refusal page."""
    try:
        request = check_request(launch, role, course)
    except LaunchRefused as refusal:
        return await handler.refuse(refusal, course=course.id, **ids)
    request_id = secrets.token_hex(16)
    pending(handler.authenticator)[request_id] = request
    https = public_scheme(handler.authenticator, handler.request) == "https"
    handler.set_secure_cookie(COOKIE, request_id, expires_days=None, httponly=True, secure=https,
                              path=url_path_join(handler.hub.base_url, RETURN_PATH),
                              samesite="None" if https else "Lax")
    audit(handler.log, "accepted", "deep_link_request", course=course.id, role=role, **ids)
    allow_lms_frame(handler, launch.registration.known_origins())
    await handler.render_page(
        "lti_deep_link_picker.html", 200, course=course, choices=choices(course), request_id=request_id,
        multiple=request.accept_multiple, auto_create=request.auto_create, lms_title=request.title,
        action=url_path_join(handler.hub.base_url, RETURN_PATH))


def allow_lms_frame(handler: Any, origins: set[str]) -> None:
    """LMSes show the picker in a dialog (an iframe): this page only may be framed by the LMS's
    registered origins (never by anyone else); every other page stays `frame-ancestors 'none'`."""
    handler.clear_header("X-Frame-Options")
    handler.set_header("Content-Security-Policy", "frame-ancestors 'self' " + " ".join(sorted(origins)))


class DeepLinkReturnHandler(SecurityHeaders, PageMixin, BaseHandler):
    """POST /hub/lti13/deep_link: the picker's choice, sent back to the LMS as a signed response."""

    async def post(self) -> None:
        auth = self.authenticator
        request_id = self.get_body_argument("request", "")
        cookie = self.get_secure_cookie(COOKIE, max_age_days=1)
        table = pending(auth)
        if not request_id or cookie is None or cookie.decode() != request_id or request_id not in table:
            return await self.refuse(LaunchRefused(
                "deep_link_expired", "This selection page has expired or was already used; add the item from "
                "your LMS again."))
        request = table.pop(request_id)
        self.clear_cookie(COOKIE, path=url_path_join(self.hub.base_url, RETURN_PATH))
        course = auth.catalog.get(request.course_id)
        offered = {c.key: c for c in choices(course)} if course is not None else {}
        picked = [] if self.get_body_argument("cancel", "") else self.get_body_arguments("item")
        if any(p not in offered for p in picked) or (len(picked) > 1 and not request.accept_multiple):
            return await self.refuse(LaunchRefused(
                "deep_link_bad_choice", "That selection is not one this course offers."),
                platform=request.platform, course=request.course_id)
        hub = url_path_join(public_origin(auth, self.request), self.hub.base_url)
        items = [content_item(course, offered[p], hub, lineitem=request.accept_lineitem) for p in picked]
        token = response_token(request, items, auth.tool_key)
        audit(self.log, "accepted", "deep_link_response", platform=request.platform, course=request.course_id,
              deployment=request.deployment_id, items=",".join(picked) or "none")
        await self.render_page("lti_deep_link_return.html", 200, action=request.return_url, jwt=token)
