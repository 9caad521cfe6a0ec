"""The hub's LTI 1.3 endpoints, subclassing jupyterhub-ltiauthenticator's handlers.

- login initiation (`/hub/lti13/oauth_login`): any registered platform, per-launch state cookie,
  server-side nonce;
- launch (`/hub/lti13/oauth_callback`): complete validation, course and role, sign-in, services
  stored, redirect to what the link opens; refusals get a page and an audit line, never a session;
- deep linking requests from staff: the picker (`deep_linking_pages.py`);
- tool JWKS (`/hub/lti13/jwks`) and tool configuration JSON (`/hub/lti13/config`);
- `/hub/coursehub/open` lives in `open_page.py`.

URLs given to browsers and LMSes come from `hub.public_url` when it is configured (`web.py`);
login parameters echoed into redirects are bounded; every page gets the security headers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13ConfigHandler, LTI13LoginInitHandler
from tornado.httputil import url_concat

from ..courses import AmbiguousLtiContext
from . import claims as C
from .audit import audit
from .deep_linking_pages import show_picker
from .open_page import OpenHandler
from .pages import PageMixin
from .platform_ids import canvas_user_id
from .refusal import LaunchRefused
from .roles import course_role, is_course_role
from .targets import open_path, resolve_target
from .tool_config import tool_configuration
from .web import ECHO_MAX, REDIRECT_MAX, SecurityHeaders, public_origin, public_scheme

LAUNCH_COOKIE_PREFIX = "coursehub-lti-"
#: Longest value of each login-initiation parameter; longer ones are refused with a 400.
LOGIN_ARG_MAX = {"iss": 512, "client_id": 255, "lti_deployment_id": 255, "login_hint": ECHO_MAX,
                 "lti_message_hint": ECHO_MAX, "target_link_uri": ECHO_MAX}
__all__ = ["CallbackHandler", "LoginInitHandler", "OpenHandler", "ToolConfigHandler", "ToolJwksHandler"]


def nonce_for(nonce_state: str) -> str:
    return hashlib.sha256(nonce_state.encode()).hexdigest()


def _blocked(state: str, platform: str) -> LaunchRefused:
    """The refusal for a stored registration that may not launch (pending approval, or rejected)."""
    if state == "pending":
        return LaunchRefused("platform_pending", "This LMS registered itself with coursehub, but the coursehub "
                             "operators have not approved the registration yet, so launches are refused. LMS "
                             "administrators: ask the coursehub operators to approve it (`coursehub lti approve "
                             f"{platform}`).", 403)
    return LaunchRefused("platform_disabled", "This LMS's registration with coursehub is switched off. Ask "
                         "your course's instructor to contact the coursehub operators.", 403)


class LoginInitHandler(SecurityHeaders, PageMixin, LTI13LoginInitHandler):
    """OIDC third-party login initiation, for any registered platform."""

    async def post(self) -> None:
        auth = self.authenticator
        args = {k: v[0].decode("utf8", "replace") for k, v in self.request.arguments.items() if v}
        too_long = sorted(k for k, limit in LOGIN_ARG_MAX.items() if len(args.get(k, "")) > limit)
        iss, client_id = args.get("iss", ""), args.get("client_id")
        ids = {"iss": iss, "client_id": client_id, "deployment": args.get("lti_deployment_id")}
        if too_long:
            return await self.refuse(LaunchRefused(
                "login_request_too_large", "The LMS started the launch with a parameter longer than this tool "
                "accepts (" + ", ".join(too_long) + ").", detail="too long: " + ",".join(too_long)),
                **{k: v for k, v in ids.items() if len(str(v or "")) <= 255})
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
        blocked = auth.registration_store.blocked(registration)
        if blocked:
            return await self.refuse(_blocked(blocked, registration.name), platform=registration.name, **ids)
        deployment = args.get("lti_deployment_id")
        if deployment and deployment not in registration.deployment_ids:
            return await self.refuse(LaunchRefused(
                "unknown_deployment", "This LMS deployment is not registered with coursehub.", 403),
                platform=registration.name, **ids)

        launch_id = secrets.token_hex(16)
        nonce_state = secrets.token_urlsafe(32)
        nonce = nonce_for(nonce_state)
        params = {
            "response_type": "id_token", "scope": "openid", "response_mode": "form_post", "prompt": "none",
            "client_id": client_id or registration.client_ids[0], "redirect_uri": self.get_redirect_uri(),
            "login_hint": args["login_hint"], "nonce": nonce, "state": launch_id,
        }
        if args.get("lti_message_hint"):
            params["lti_message_hint"] = args["lti_message_hint"]
        url = url_concat(registration.auth_login_url, params)
        if len(url) > REDIRECT_MAX:
            return await self.refuse(LaunchRefused(
                "login_request_too_large", "The launch cannot be forwarded to the LMS: its parameters are too "
                "long.", detail=f"redirect of {len(url)} characters"), platform=registration.name, **ids)
        auth.store.issue_nonce(nonce, auth.nonce_ttl_seconds)
        cookie = json.dumps({"state": launch_id, "nonce_state": nonce_state, "platform": registration.name})
        self.set_launch_cookie(LAUNCH_COOKIE_PREFIX + launch_id, cookie)
        self.redirect(url)

    get = post

    def get_redirect_uri(self) -> str:
        """The launch endpoint as registered with the LMS: from hub.public_url when configured."""
        return public_origin(self.authenticator, self.request) + self.authenticator.callback_url(self.hub.base_url)

    def set_launch_cookie(self, name: str, value: str) -> None:
        """One cookie per launch (two tabs never collide), scoped to the launch endpoint.

        Over https it is SameSite=None; Secure so the LMS's cross-site form post carries it; over
        plain http (local use) browsers refuse SameSite=None, so it is Lax.
        """
        https = public_scheme(self.authenticator, self.request) == "https"
        self.set_secure_cookie(
            name, value, expires_days=None, max_age=self.authenticator.nonce_ttl_seconds,
            path=self.authenticator.callback_url(self.hub.base_url), httponly=True,
            secure=https, samesite="None" if https else "Lax",
        )


class CallbackHandler(SecurityHeaders, PageMixin, LTI13CallbackHandler):
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
        blocked = auth.registration_store.blocked(registration)
        if blocked:  # rejected since the login started
            return await self.refuse(_blocked(blocked, registration.name), **ids)
        try:
            launch = await auth.validator.validate(id_token, registration, nonce_for(cookie.get("nonce_state", "")))
        except LaunchRefused as refusal:
            return await self.refuse(refusal, **ids)
        ids.update(client_id=launch.client_id, deployment=launch.deployment_id)

        context_id = launch.context.get("id")
        role = course_role(launch.roles)
        deep_linking = launch.message_type == C.DEEP_LINKING_REQUEST
        if deep_linking and not context_id:
            return await self.refuse(LaunchRefused(
                "deep_link_no_context", "coursehub items can only be added inside an LMS course.",
                detail="deep linking request without a context"), **ids)
        try:
            course = (auth.catalog.for_lti_context(launch.deployment_id, context_id, registration.name,
                                                   registered=len(auth.registry.registrations))
                      if context_id else None)
        except AmbiguousLtiContext as e:
            return await self.refuse(LaunchRefused(
                "ambiguous_context", "coursehub cannot tell which course this LMS course belongs to. Tell your "
                "course staff: the coursehub operators must add `platform:` to the course's LTI entry.", 409,
                detail=f"context={context_id} courses={','.join(e.course_ids)}"), **ids)
        if course is None:
            audit(self.log, "refused", "unknown_context", context=context_id, ip=self.request.remote_ip, **ids)
            return await self.render_page(
                "lti_unknown_course.html", 404, context_title=launch.context.get("title") or "",
                context_id=context_id or "", deployment_id=launch.deployment_id, platform=registration.name,
                role=role)
        if deep_linking:
            return await show_picker(self, launch, course, role, ids)
        if not is_course_role(role):
            return await self.refuse(LaunchRefused(
                "observer_role", "Your role in this LMS course (observer or mentor) does not give access to "
                "coursehub: it is for the course's students and staff.", 403, page="lti_observer.html",
                detail=f"course={course.id}"), **ids)
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
        lms_user_id = canvas_user_id(launch.custom)
        if lms_user_id:  # for the LMS's gradebook import (exports match students by it)
            auth.store.save_platform_user_id(launch.issuer, launch.subject, lms_user_id)
        target = resolve_target(course, launch.custom, launch.target_link_uri)
        audit(self.log, "accepted", "ok", **ids, user=user.name, course=course.id, role=role,
              target=f"{target.kind}:{target.item}" if target.item else target.kind)
        self.redirect(open_path(self.hub.base_url, course.id, target))


class ToolJwksHandler(SecurityHeaders, BaseHandler):
    """The tool's public keys, for LMSes verifying our AGS/NRPS client assertions."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(self.authenticator.tool_key.jwks()))


class ToolConfigHandler(SecurityHeaders, LTI13ConfigHandler):
    """An LTI 1.3 tool configuration JSON for registering coursehub in an LMS."""

    async def get(self) -> None:
        auth = self.authenticator
        hub = url_path_join(public_origin(auth, self.request), self.hub.base_url)
        config = tool_configuration(hub, auth.tool_name, auth.tool_description)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(config, indent=2))
