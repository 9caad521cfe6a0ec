"""The hub's LTI 1.3 endpoints, subclassing jupyterhub-ltiauthenticator's handlers.

- login initiation (`/hub/lti13/oauth_login`): any registered platform, per-launch state cookie,
  server-side nonce;
- launch (`/hub/lti13/oauth_callback`): complete validation, course and role, sign-in, services
  stored, redirect to what the link opens; refusals get a page and an audit line, never a session;
- tool JWKS (`/hub/lti13/jwks`) and tool configuration JSON (`/hub/lti13/config`);
- `/hub/coursehub/open`: start or reuse the user's server with the course and open the target.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import jupyterhub
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13ConfigHandler, LTI13LoginInitHandler
from tornado import web
from tornado.httputil import url_concat

from ..profiles import courses_of, is_staff
from . import claims as C
from .audit import audit
from .opening import FetchRequest, ensure_assignment, first_notebook, lab_url, textbook_launch_url
from .refusal import LaunchRefused
from .roles import course_role
from .targets import Target, open_path, resolve_target, textbook_pages

LAUNCH_COOKIE_PREFIX = "coursehub-lti-"
JH6 = jupyterhub.version_info >= (6,)


def nonce_for(nonce_state: str) -> str:
    return hashlib.sha256(nonce_state.encode()).hexdigest()


class PageMixin:
    async def render_page(self: Any, template: str, status: int, **ns: Any) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        html = await self.render_template(template, **ns)
        self.finish(html)

    async def refuse(self: Any, refusal: LaunchRefused, **ids: Any) -> None:
        audit(self.log, "refused", refusal.reason, ip=self.request.remote_ip,
              detail=refusal.detail or None, **ids)
        await self.render_page(refusal.page, refusal.status, message=refusal.message, reason=refusal.reason)


class LoginInitHandler(PageMixin, LTI13LoginInitHandler):
    """OIDC third-party login initiation, for any registered platform."""

    async def post(self) -> None:
        auth = self.authenticator
        args = {k: v[0].decode("utf8", "replace") for k, v in self.request.arguments.items() if v}
        iss, client_id = args.get("iss", ""), args.get("client_id")
        ids = {"iss": iss, "client_id": client_id, "deployment": args.get("lti_deployment_id")}
        missing = [k for k in ("iss", "login_hint", "target_link_uri") if not args.get(k)]
        if missing:
            return await self.refuse(LaunchRefused(
                "bad_login_request", "The LMS started the launch without " + ", ".join(missing) + "."), **ids)
        registration = auth.registry.find(iss, client_id)
        if registration is None:
            reason = "unknown_client_id" if auth.registry.knows_issuer(iss) else "unknown_issuer"
            return await self.refuse(LaunchRefused(
                reason, "This LMS is not registered with coursehub. Ask your course's instructor to contact "
                "the coursehub operators.", 403), **ids)
        deployment = args.get("lti_deployment_id")
        if deployment and deployment not in registration.deployment_ids:
            return await self.refuse(LaunchRefused(
                "unknown_deployment", "This LMS deployment is not registered with coursehub.", 403),
                platform=registration.name, **ids)

        launch_id = secrets.token_hex(16)
        nonce_state = secrets.token_urlsafe(32)
        nonce = nonce_for(nonce_state)
        auth.store.issue_nonce(nonce, auth.nonce_ttl_seconds)
        cookie = json.dumps({"state": launch_id, "nonce_state": nonce_state, "platform": registration.name})
        self.set_launch_cookie(LAUNCH_COOKIE_PREFIX + launch_id, cookie)
        params = {
            "response_type": "id_token", "scope": "openid", "response_mode": "form_post", "prompt": "none",
            "client_id": client_id or registration.client_ids[0], "redirect_uri": self.get_redirect_uri(),
            "login_hint": args["login_hint"], "nonce": nonce, "state": launch_id,
        }
        if args.get("lti_message_hint"):
            params["lti_message_hint"] = args["lti_message_hint"]
        self.redirect(url_concat(registration.auth_login_url, params))

    get = post

    def set_launch_cookie(self, name: str, value: str) -> None:
        """One cookie per launch (two tabs never collide), scoped to the launch endpoint.

        Over https it is SameSite=None; Secure so the LMS's cross-site form post carries it; over
        plain http (local use) browsers refuse SameSite=None, so it is Lax.
        """
        https = self.authenticator.get_uri_scheme(self.request) == "https"
        self.set_secure_cookie(
            name, value, expires_days=None, max_age=self.authenticator.nonce_ttl_seconds,
            path=self.authenticator.callback_url(self.hub.base_url), httponly=True,
            secure=https, samesite="None" if https else "Lax",
        )


class CallbackHandler(PageMixin, LTI13CallbackHandler):
    """The launch itself: validate, map to a course, sign in, redirect."""

    async def post(self) -> None:
        auth = self.authenticator
        id_token = self.get_body_argument("id_token", "")
        state = self.get_body_argument("state", "")
        if not id_token or not state:
            return await self.refuse(LaunchRefused(
                "bad_launch_request", "The launch message is incomplete (no id_token or state)."))
        name = LAUNCH_COOKIE_PREFIX + state
        raw = self.get_secure_cookie(name, max_age_days=1) if len(state) == 32 and state.isalnum() else None
        if raw is None:
            blocked = not self.request.cookies
            return await self.refuse(LaunchRefused(
                "cookies_blocked" if blocked else "state_missing",
                "Your browser did not send back the cookie this launch needs.", 400, page="lti_cookies.html"))
        self.clear_cookie(name, path=auth.callback_url(self.hub.base_url))
        try:
            cookie = json.loads(raw)
        except ValueError:
            cookie = {}
        if cookie.get("state") != state:
            return await self.refuse(LaunchRefused("state_mismatch", "The launch does not match this browser.",
                                                   page="lti_cookies.html"))
        registration = auth.registry.by_name(cookie.get("platform", ""))
        if registration is None:
            return await self.refuse(LaunchRefused("unknown_issuer", "This LMS is no longer registered.", 403))
        ids: dict[str, Any] = {"platform": registration.name, "iss": registration.issuer}
        try:
            launch = await auth.validator.validate(id_token, registration, nonce_for(cookie.get("nonce_state", "")))
        except LaunchRefused as refusal:
            return await self.refuse(refusal, **ids)
        ids.update(client_id=launch.client_id, deployment=launch.deployment_id)

        context_id = launch.context.get("id")
        course = (auth.catalog.for_lti_context(launch.deployment_id, context_id, registration.name)
                  if context_id else None)
        if course is None:
            audit(self.log, "refused", "unknown_context", context=context_id, ip=self.request.remote_ip, **ids)
            return await self.render_page(
                "lti_unknown_course.html", 404, context_title=launch.context.get("title") or "",
                context_id=context_id or "", deployment_id=launch.deployment_id, platform=registration.name,
                role=course_role(launch.roles))
        role = course_role(launch.roles)
        user = await self.login_user({"launch": launch, "course": course, "role": role})
        if user is None:
            audit(self.log, "refused", "sign_in_refused", course=course.id, **ids)
            return await self.render_page("lti_refused.html", 403, message="coursehub refused the sign-in.",
                                          reason="sign_in_refused")
        auth.store.save_services(
            username=user.name, course=course.id, platform=registration.name, issuer=launch.issuer,
            client_id=launch.client_id, deployment_id=launch.deployment_id, context_id=context_id,
            subject=launch.subject, role=role, ags=launch.claims.get(C.AGS_ENDPOINT),
            nrps=launch.claims.get(C.NRPS), resource_link=launch.resource_link,
        )
        target = resolve_target(course, launch.custom, launch.target_link_uri)
        audit(self.log, "accepted", "ok", **ids, user=user.name, course=course.id, role=role,
              target=f"{target.kind}:{target.item}" if target.item else target.kind)
        self.redirect(open_path(self.hub.base_url, course.id, target))


class ToolJwksHandler(BaseHandler):
    """The tool's public keys, for LMSes verifying our AGS/NRPS client assertions."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(self.authenticator.tool_key.jwks()))


class ToolConfigHandler(LTI13ConfigHandler):
    """An LTI 1.3 tool configuration JSON for registering coursehub in an LMS."""

    async def get(self) -> None:
        auth = self.authenticator
        base = f"{auth.get_uri_scheme(self.request)}://{self.request.host}"
        hub = url_path_join(base, self.hub.base_url)
        config = {
            "title": auth.tool_name,
            "description": auth.tool_description,
            "oidc_initiation_url": url_path_join(hub, "lti13/oauth_login"),
            "target_link_uri": url_path_join(hub, "coursehub/open"),
            "redirect_uris": [url_path_join(hub, "lti13/oauth_callback")],
            "public_jwk_url": url_path_join(hub, "lti13/jwks"),
            "jwks_uri": url_path_join(hub, "lti13/jwks"),
            "scopes": [*C.AGS_SCOPES, C.NRPS_SCOPE],
            "messages": [{"type": C.RESOURCE_LINK_REQUEST}],
            "custom_fields": {},
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "extensions": [{
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {"placements": [{
                    "placement": "link_selection", "message_type": C.RESOURCE_LINK_REQUEST,
                    "windowTarget": "_blank", "target_link_uri": url_path_join(hub, "coursehub/open"),
                }]},
            }],
        }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(config, indent=2))


class OpenHandler(PageMixin, BaseHandler):
    """`/hub/coursehub/open?course=&assignment=|textbook=`: start or reuse the server, then open."""

    @web.authenticated
    async def get(self) -> None:
        auth = self.authenticator
        user = self.current_user
        course_id = self.get_argument("course", "")
        course = auth.catalog.get(course_id)
        roles = courses_of([g.name for g in user.groups])
        if course is None or course_id not in roles:
            return await self.render_page("lti_unknown_course.html", 404 if course is None else 403,
                                          context_title=course_id, context_id="", deployment_id="", platform="",
                                          role="", not_member=course is not None)
        target = Target("course")
        assignment, page = self.get_argument("assignment", ""), self.get_argument("textbook", "")
        if assignment and course.assignment(assignment) is not None:
            target = Target("assignment", assignment)
        elif page and page in textbook_pages(course):
            target = Target("textbook", page)

        spawner = user.spawner
        here = open_path(self.hub.base_url, course.id, target)
        if not spawner.ready:
            tries = int(self.get_argument("tries", "0") or 0)
            if tries >= 2:
                return await self.render_page("lti_refused.html", 503, reason="server_not_started",
                                              message="Your server did not start. Try again in a minute; if it "
                                              "keeps failing, tell your course staff.")
            back = url_concat(here, {"tries": str(tries + 1)})
            if spawner.pending or spawner.active:
                url = url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name)
                return self.redirect(url_concat(url, {"next": back}))
            option = "opt-course" if JH6 else "course"
            url = url_path_join(self.hub.base_url, "spawn", user.escaped_name)
            return self.redirect(f"{url}?{urlencode({option: course.id, 'next': back})}")

        home = _home_dir(spawner)
        if target.kind == "assignment":
            fetcher = auth.assignment_fetcher
            if fetcher is not None and is_staff(roles[course.id]):
                # Staff release, collect and grade in the formgrader (their server has it).
                return self.redirect(url_path_join(user.url, "formgrader"))
            token = None
            if fetcher is not None:  # the exchange fetches inside the user's own server, as the user
                token = user.new_api_token(scopes=[f"access:servers!user={user.name}"], expires_in=300,
                                           note="coursehub: fetch an assignment at launch")
            req = FetchRequest(user.name, course, target.item, server_url=self._server_url(user),
                               home_dir=home, token=token)
            folder = await ensure_assignment(req, fetcher, auth.released_cache_dir)
            self.log.info("coursehub open: %s %s/%s -> %s", user.name, course.id, target.item, folder or "not available")
            if folder is None:
                assignment_title = course.assignment(target.item).title or target.item
                return await self.render_page("lti_not_released.html", 200, course_title=course.title,
                                              assignment=assignment_title, lab_url=url_path_join(user.url, "lab"))
            notebook = first_notebook(home, folder, course, target.item)
            return self.redirect(lab_url(user.url, f"{folder}/{notebook}" if notebook else folder))
        if target.kind == "textbook":
            return self.redirect(textbook_launch_url(course, target.item, user_base_url=user.url, home_dir=home))
        return self.redirect(url_path_join(user.url, "lab"))

    def _server_url(self, user: Any) -> str:
        return f"{self.request.protocol}://{self.request.host}{user.url}"


def _home_dir(spawner: Any):
    from pathlib import Path

    home = getattr(spawner, "home_dir", None)
    return Path(home) if isinstance(home, str) and home else None
