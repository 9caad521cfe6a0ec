"""The local LMS page and its OIDC endpoints, mounted on the hub in local mode.

Every endpoint refuses (403) unless the hub listens on loopback and the request comes from
loopback: this page can sign anyone in as anyone, so it must never be reachable from a network.
Loopback is not enough against a web page in the same browser: the launch POST checks the hub's
XSRF token (JupyterHub's check), and the OIDC endpoint takes GET only. URLs come from the
local-lms registration (configuration), never from the request's Host header.
"""

from __future__ import annotations

from urllib.parse import urlparse

from jupyterhub.utils import url_path_join
from tornado import web

from ..lti.local_registration import CLIENT_ID, linked_courses
from ..lti.targets import Target, open_path, textbook_pages
from ..lti.web import ECHO_MAX, bounded
from .ags import service_handlers
from .base import LocalLmsBase
from .lms import ROLE_URIS


class LmsPageHandler(LocalLmsBase):
    """GET /hub/lms: the demo courses' assignments and textbook pages, with launch buttons."""

    async def get(self) -> None:
        courses = []
        for course, _ctx in linked_courses(self.authenticator.catalog):
            courses.append({
                "id": course.id, "title": course.title,
                "assignments": [(a.id, a.title or a.id) for a in course.assignments],
                "pages": textbook_pages(course),
            })
        unlinked = [c.id for c in self.authenticator.catalog if not any(c.id == d["id"] for d in courses)]
        html = await self.render_template("local_lms.html", courses=courses, unlinked=unlinked,
                                          roles=list(ROLE_URIS))
        self.finish(html)


class LmsLaunchHandler(LocalLmsBase):
    """POST /hub/lms/launch: start an LTI 1.3 launch the way an LMS does (login initiation)."""

    async def post(self) -> None:
        catalog = self.authenticator.catalog
        pairs = {c.id: ctx for c, ctx in linked_courses(catalog)}
        course = catalog.get(self.get_body_argument("course", ""))
        if course is None or course.id not in pairs:
            raise web.HTTPError(404, "No such course on the local LMS.")
        role = self.get_body_argument("role", "student")
        if role not in ROLE_URIS:
            raise web.HTTPError(400, "Unknown role.")
        kind, item = self.get_body_argument("kind", "course"), bounded(self.get_body_argument("item", ""), 128, "item")
        if kind not in ("course", "assignment", "textbook"):
            raise web.HTTPError(400, "Unknown kind of item.")
        if kind == "assignment" and course.assignment(item) is None or \
                kind == "textbook" and item not in textbook_pages(course):
            raise web.HTTPError(404, "No such item in the course.")
        person = (self.get_body_argument("person", "") or f"Demo {role}").strip()[:80]
        hint, launch = self.lms.start(person=person, role=role, course=course, context=pairs[course.id],
                                      kind=kind, item=item)
        target = open_path(self._hub_url(), course.id, Target(kind, item) if kind != "course" else Target("course"))
        self.redirect(self.lms.login_initiation_url(self.hub.base_url, hint, launch, target))

    def _hub_url(self) -> str:
        return f"{self.hub_origin()}{self.hub.base_url.rstrip('/')}"


class LmsAuthHandler(LocalLmsBase):
    """GET /hub/lms/auth: the platform's OIDC authentication endpoint (response_mode=form_post)."""

    async def get(self) -> None:
        args = {k: bounded(self.get_argument(k, ""), ECHO_MAX, k) for k in (
            "client_id", "redirect_uri", "login_hint", "nonce", "state", "response_type", "response_mode", "scope")}
        if args["client_id"] != CLIENT_ID or args["response_type"] != "id_token" \
                or args["response_mode"] != "form_post" or "openid" not in args["scope"].split():
            raise web.HTTPError(400, "Not an LTI 1.3 authentication request for the local tool.")
        callback = urlparse(args["redirect_uri"])
        expected = url_path_join(self.hub.base_url, "lti13/oauth_callback")
        if callback.path != expected or f"{callback.scheme}://{callback.netloc}" != self.hub_origin():
            raise web.HTTPError(400, "redirect_uri is not this hub's launch endpoint.")
        launch = self.lms.take(args["login_hint"])
        if launch is None or not args["nonce"]:
            raise web.HTTPError(400, "This launch expired or was already used; go back to the LMS page.")
        target = open_path(f"{callback.scheme}://{callback.netloc}{self.hub.base_url.rstrip('/')}",
                           launch.course.id, Target(launch.kind, launch.item))
        token = self.lms.id_token(launch, nonce=args["nonce"], target_link_uri=target)
        html = await self.render_template("local_lms_post.html", action=args["redirect_uri"],
                                          fields={"id_token": token, "state": args["state"]})
        self.set_header("Cache-Control", "no-store")
        self.finish(html)


class LmsJwksHandler(LocalLmsBase):
    def get(self) -> None:
        import json

        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lms.key.jwks()))


def local_lms_handlers() -> list[tuple[str, type]]:
    return [
        ("/lms", LmsPageHandler),
        ("/lms/launch", LmsLaunchHandler),
        ("/lms/auth", LmsAuthHandler),
        ("/lms/jwks", LmsJwksHandler),
        *service_handlers(),
    ]
