"""Dynamic registration on the hub: admins make one-time links, LMSes register through them.

- `/hub/lti13/registration-links` (hub admins only: the `admin:users` scope): GET a form, POST to
  create a link valid for a day. The operator pastes the link into the LMS's "register by URL".
  The same page lists the registrations pending approval with approve/reject buttons (POST
  `decision=approve|reject&platform=NAME`), the admin page's side of `coursehub lti approve|reject`.
- `/hub/lti13/register?rt=...&openid_configuration=...&registration_token=...`: what the LMS opens.
  The one-time token is spent first (even if registration then fails), so a link leaked later is
  worthless; an admin's session alone is not enough, because a cross-site page could make an
  admin's browser open this GET with an attacker's configuration URL.
The new platform is stored (`registration_store.py`) *pending* and added to the running registry:
its launches are refused (`platform_pending`) until an operator runs `coursehub lti approve NAME`,
which holds at once, without a restart or a YAML edit. The LMS admin running the handshake is not
the coursehub operator: the link only lets an LMS ask, the operator decides.
"""

from __future__ import annotations

import re
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat

from .audit import audit
from .dynamic_registration import (
    RegistrationRefused,
    UrlPolicy,
    fetch_configuration,
    platform_name,
    register,
    registration_from,
)
from .pages import PageMixin
from .refusal import LaunchRefused
from .registration_store import ACTIVE, DISABLED, PENDING
from .tool_config import registration_request
from .web import SecurityHeaders, bounded, public_origin

LINKS_PATH = "lti13/registration-links"
REGISTER_PATH = "lti13/register"
LINK_TTL = 86400
_NAME = r"^[a-z0-9](?:[a-z0-9-]{0,55})$"


class RegistrationLinksHandler(SecurityHeaders, PageMixin, BaseHandler):
    """Hub admins create one-time dynamic registration links (a browser session with the XSRF
    token, or an API token in the Authorization header, which no cross-site page can send)."""

    _accept_token_auth = True

    def _admin(self) -> str:
        user = self.current_user
        if user is None or "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "Only hub admins can create LTI registration links.")
        return user.name

    def _json(self) -> bool:
        """Services (tokens) and API clients get JSON; people get the page."""
        user = self.current_user
        return getattr(user, "kind", "user") != "user" or "application/json" in self.request.headers.get("Accept", "")

    def _pending(self) -> list[dict]:
        """The stored registrations waiting for approval: name, issuer, since (epoch seconds)."""
        return [{"name": r["name"], "issuer": r["issuer"], "registered": r["created_at"]}
                for r in self.authenticator.registration_store.listing() if r["state"] == PENDING]

    async def _page(self, status: int, link: str | None = None, platform_name: str = "", error: str = "",
                    decided: str = "") -> None:
        await self.render_page("lti_registration_links.html", status, link=link, platform_name=platform_name,
                               error=error, decided=decided, pending=self._pending())

    @web.authenticated
    async def get(self) -> None:
        self._admin()
        if self._json():
            return self.finish({"create": "POST here (name=optional platform name) for a one-time link",
                                "decide": "POST decision=approve|reject&platform=NAME",
                                "pending": self._pending()})
        await self._page(200)

    async def _decide(self, admin: str, decision: str) -> None:
        """Approve or reject a stored registration (pending or not), as `coursehub lti approve|reject`."""
        name = bounded(self.get_body_argument("platform", "").strip(), 64, "platform")
        if decision not in ("approve", "reject"):
            raise web.HTTPError(400, "decision: approve or reject")
        state = ACTIVE if decision == "approve" else DISABLED
        if not name or not self.authenticator.registration_store.set_state(name, state, f"admin:{admin}"):
            if self._json():
                raise web.HTTPError(404, "no dynamically registered platform has this name")
            return await self._page(404, error=f"No dynamically registered platform is named {name!r}.")
        self.log.info("LTI registration %s: %s by hub admin %s", name, state, admin)
        if self._json():
            return self.finish({"platform": name, "state": state})
        await self._page(200, decided=f"{name}: {state}")

    @web.authenticated
    async def post(self) -> None:
        admin = self._admin()
        decision = self.get_body_argument("decision", "")
        if decision:
            return await self._decide(admin, decision)
        name = bounded(self.get_body_argument("name", "").strip().lower(), 56, "name")
        if name and (not re.match(_NAME, name) or self.authenticator.registry.by_name(name)):
            if self._json():
                raise web.HTTPError(400, "name: lower-case letters, digits, dashes; not a registered platform's")
            return await self._page(400, platform_name=name, error="Use lower-case letters, digits and dashes, "
                                    "and a name no registered platform has.")
        token = self.authenticator.registration_store.create_link(admin, name, LINK_TTL)
        hub = url_path_join(public_origin(self.authenticator, self.request), self.hub.base_url)
        link = url_concat(url_path_join(hub, REGISTER_PATH), {"rt": token})
        self.log.info("LTI registration link created by %s (platform name %r)", admin, name or "(from host)")
        if self._json():
            self.set_header("Cache-Control", "no-store")
            return self.finish({"url": link, "platform": name or None, "expires_in": LINK_TTL})
        await self._page(200, link=link, platform_name=name)


class RegisterHandler(SecurityHeaders, PageMixin, BaseHandler):
    """The LMS's side of LTI Dynamic Registration 1.0 lands here (in the admin's browser)."""

    async def get(self) -> None:
        auth = self.authenticator
        config_url = bounded(self.get_argument("openid_configuration", ""), 2048, "openid_configuration")
        reg_token = bounded(self.get_argument("registration_token", ""), 4096, "registration_token")
        link = auth.registration_store.consume_link(self.get_argument("rt", "")[:128])
        if link is None:
            return await self._refuse("registration_link_invalid", "This registration link is unknown, expired "
                                      "or already used. Ask the coursehub operators for a new one.", 403)
        if not config_url:
            return await self._refuse("bad_registration_request", "The LMS did not send its OpenID "
                                      "configuration URL.")
        policy = UrlPolicy(tuple(auth.registration_hosts), auth.allow_loopback_registration)
        hub = url_path_join(public_origin(auth, self.request), self.hub.base_url)
        try:
            config = await fetch_configuration(policy, config_url)
            answer = await register(policy, config, reg_token,
                                    registration_request(hub, auth.tool_name, auth.tool_description))
            taken = {r.name for r in auth.registry.registrations}
            registration = registration_from(platform_name(config_url, link["name"], taken), config, answer)
        except RegistrationRefused as e:
            return await self._refuse(f"registration_{e.reason}", e.message, 400)
        if auth.registry.find(registration.issuer, registration.client_ids[0]) is not None:
            return await self._refuse("registration_duplicate", "This LMS client is already registered.", 409)
        auth.registration_store.save(registration, PENDING, by=f"registration (link by {link['created_by']})")
        auth.registry.add(registration)
        audit(self.log, "accepted", "registered", platform=registration.name, state=PENDING, iss=registration.issuer,
              client_id=registration.client_ids[0], deployment=",".join(registration.deployment_ids),
              admin=link["created_by"])
        await self.render_page("lti_registered.html", 200, platform_name=registration.name,
                               deployments=registration.deployment_ids, state=PENDING)

    async def _refuse(self, reason: str, message: str, status: int = 400) -> Any:
        await self.refuse(LaunchRefused(reason, message, status))
