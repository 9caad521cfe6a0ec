"""The local LMS's service endpoints (loopback only, like the rest of the page):

    POST /hub/lms/token                                   OAuth2 client credentials (JWT assertion)
    GET|POST /hub/lms/ags/<context>/lineitems             AGS line items
    GET|PUT  /hub/lms/ags/<context>/lineitems/<n>
    POST /hub/lms/ags/<context>/lineitems/<n>/scores      AGS scores
    GET  /hub/lms/nrps/<context>/memberships              NRPS roster
    GET  /hub/lms/gradebook                               the local gradebook page (people)

The service calls carry an access token from the token endpoint, never a browser's cookies, so
they skip the hub's XSRF check; the token endpoint takes only an assertion signed by the tool's key.
"""

from __future__ import annotations

import json
from typing import Any

from ..lti import claims as C
from ..lti.local_registration import linked_courses
from .base import LocalLmsBase
from .services import LINEITEM_READ, LINEITEM_SCOPE, SCORE_SCOPE, ServiceRefused

LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_BODY = 64 * 1024


class ServiceBase(LocalLmsBase):
    def check_xsrf_cookie(self) -> None:
        """Bearer tokens and signed assertions, not cookies: nothing a cross-site form can forge."""

    def linked_context(self, context_id: str) -> Any:
        """The course linked to the local LMS in `context_id` (404 for any other context)."""
        for course, ctx in linked_courses(self.authenticator.catalog):
            if ctx.context_id == context_id:
                return course
        raise ServiceRefused(404, "", "no course of the local LMS has this context")

    def bearer(self, *scopes: str) -> None:
        self.lms.services.check_bearer(self.request.headers.get("Authorization", ""), *scopes)

    def body_json(self) -> Any:
        if len(self.request.body) > MAX_BODY:
            raise ServiceRefused(413, "", "request body too large")
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise ServiceRefused(400, "", "the body is not JSON") from None

    def reply(self, data: Any, content_type: str = "application/json", status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def refused(self, e: ServiceRefused) -> None:
        if e.status == 401:
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        body = {"error": e.error or "request_refused", "error_description": e.description}
        self.reply(body, status=e.status)

    async def guarded(self, fn: Any, *args: str) -> None:
        try:
            fn(*args)
        except ServiceRefused as e:
            self.refused(e)


class TokenHandler(ServiceBase):
    async def post(self) -> None:
        form = {k: self.get_body_argument(k, "")[:8192] for k in (
            "grant_type", "client_assertion_type", "client_assertion", "scope")}
        await self.guarded(lambda: self.reply(self.lms.services.issue_token(form)))


class LineItemsHandler(ServiceBase):
    async def get(self, context_id: str) -> None:
        def run() -> None:
            self.linked_context(context_id)
            self.bearer(LINEITEM_SCOPE, LINEITEM_READ)
            items = self.lms.services.lineitems(context_id, self.get_query_argument("resource_id", None),
                                                self.get_query_argument("tag", None))
            self.reply(items, LINEITEMS_TYPE)
        await self.guarded(run)

    async def post(self, context_id: str) -> None:
        def run() -> None:
            self.linked_context(context_id)
            self.bearer(LINEITEM_SCOPE)
            item = self.lms.services.create_lineitem(context_id, self.lms.lineitems_url(context_id), self.body_json())
            self.reply(item, LINEITEM_TYPE, 201)
        await self.guarded(run)


class LineItemHandler(ServiceBase):
    async def get(self, context_id: str, n: str) -> None:
        def run() -> None:
            self.linked_context(context_id)
            self.bearer(LINEITEM_SCOPE, LINEITEM_READ)
            self.reply(self.lms.services.lineitem(context_id, n)["item"], LINEITEM_TYPE)
        await self.guarded(run)

    async def put(self, context_id: str, n: str) -> None:
        def run() -> None:
            self.linked_context(context_id)
            self.bearer(LINEITEM_SCOPE)
            self.reply(self.lms.services.update_lineitem(context_id, n, self.body_json()), LINEITEM_TYPE)
        await self.guarded(run)


class ScoresHandler(ServiceBase):
    async def post(self, context_id: str, n: str) -> None:
        def run() -> None:
            self.linked_context(context_id)
            self.bearer(SCORE_SCOPE)
            if self.request.headers.get("Content-Type", "").split(";")[0].strip() != SCORE_TYPE:
                raise ServiceRefused(415, "", f"scores must be sent as {SCORE_TYPE}")
            self.lms.services.post_score(context_id, n, self.body_json())
            self.reply({}, "application/json", 200)
        await self.guarded(run)


class MembershipsHandler(ServiceBase):
    async def get(self, context_id: str) -> None:
        def run() -> None:
            course = self.linked_context(context_id)
            self.bearer(C.NRPS_SCOPE)
            self.reply({"id": self.lms.memberships_url(context_id),
                        "context": {"id": context_id, "label": course.id, "title": course.title},
                        "members": self.lms.services.members(context_id)}, MEMBERSHIP_TYPE)
        await self.guarded(run)


class GradebookHandler(LocalLmsBase):
    """The local LMS's gradebook: each course's line items and the scores coursehub sent."""

    async def get(self) -> None:
        services = self.lms.services
        courses = [{"id": course.id, "title": course.title, "context": ctx.context_id,
                    **services.gradebook(ctx.context_id)} for course, ctx in linked_courses(self.authenticator.catalog)]
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.render_template("local_lms_gradebook.html", courses=courses))


def service_handlers() -> list[tuple[str, type]]:
    ctx = r"([^/]{1,255})"
    return [
        ("/lms/token", TokenHandler),
        (rf"/lms/ags/{ctx}/lineitems", LineItemsHandler),
        (rf"/lms/ags/{ctx}/lineitems/([0-9]{{1,6}})", LineItemHandler),
        (rf"/lms/ags/{ctx}/lineitems/([0-9]{{1,6}})/scores", ScoresHandler),
        (rf"/lms/nrps/{ctx}/memberships", MembershipsHandler),
        ("/lms/gradebook", GradebookHandler),
    ]

