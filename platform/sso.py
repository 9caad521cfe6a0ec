"""Campus single sign-on (OIDC) on the same hub as LTI, through oauthenticator.

`CampusSsoAuthenticator` is a `GenericOAuthenticator` that the hub's `CoursehubAuthenticator`
holds as a helper: its login and callback handlers are mounted at `/hub/sso/login` and
`/hub/sso/callback` and see it as "their" authenticator. It adds what coursehub needs:

- usernames from the SSO subject through the same identity table as LTI (collision-free);
- course roles: course.yaml staff lists name SSO subjects or hub names; values of the
  `roles_claim` of the form `<course>:<role>` (or `course:<course>:<role>`) grant those groups;
  if `staff_values` is set, only people whose `roles_claim` holds one of them may sign in here;
- groups are added to what the user has, never replacing other courses;
- optional account linking: with `link_claim` set, an SSO sign-in whose claim value equals the
  same claim of an earlier LTI launch signs in as that LTI user (and vice versa). Off by default.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jupyterhub.utils import url_path_join
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from traitlets import Any as AnyTrait
from traitlets import List, Unicode

from .groups import COURSE_ROLES, course_group, merged_groups, parse_course_group
from .lti.identity import subject_hash

_READABLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


class CampusSsoAuthenticator(GenericOAuthenticator):
    coursehub = AnyTrait(help="The CoursehubAuthenticator this one serves.")
    roles_claim = Unicode("", config=True)
    staff_values = List(Unicode(), config=True)
    link_claim = Unicode("", config=True)
    provider_id = Unicode("campus", config=True)

    def get_callback_url(self, handler: Any = None) -> str:
        if self.oauth_callback_url:
            return self.oauth_callback_url
        if handler is None:
            raise ValueError("set hub.public_url: the SSO redirect URI is built from it")
        proto = self.coursehub.get_uri_scheme(handler.request)
        return f"{proto}://{handler.request.host}{url_path_join(handler.hub.server.base_url, 'sso/callback')}"

    @property
    def issuer_key(self) -> str:
        return f"sso:{self.provider_id}"

    def user_info_to_username(self, user_info: dict) -> str:
        subject = str(super().user_info_to_username(user_info))
        link_value = str(user_info.get(self.link_claim) or "") or None if self.link_claim else None
        store = self.coursehub.store
        forced = None
        if link_value:
            linked = store.find_linked(link_value, exclude_issuer=self.issuer_key)
            forced = linked.username if linked else None
        lowered = subject.lower()
        candidates = ([lowered] if _READABLE.match(lowered) else []) + [
            f"sso-{subject_hash(self.issuer_key, subject)[:n]}" for n in (10, 16, 26)]
        identity = store.claim_identity(
            self.issuer_key, subject, candidates, display_name=str(user_info.get("name") or ""),
            email=str(user_info.get("email") or ""), link_value=link_value, username=forced)
        return identity.username

    def claim_values(self, user_info: dict) -> list[str]:
        value = user_info.get(self.roles_claim) if self.roles_claim else None
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def granted_groups(self, username: str, user_info: dict) -> list[str]:
        subject = str(user_info.get(self.username_claim) or "") if isinstance(self.username_claim, str) else ""
        groups: set[str] = set()
        for course in self.coursehub.catalog:
            if username in course.staff.instructors or subject in course.staff.instructors:
                groups.add(course_group(course.id, "instructor"))
            elif username in course.staff.teaching_assistants or subject in course.staff.teaching_assistants:
                groups.add(course_group(course.id, "ta"))
        for value in self.claim_values(user_info):
            parsed = parse_course_group(value) or _short_group(value)
            if parsed and self.coursehub.catalog.get(parsed[0]) is not None:
                groups.add(course_group(*parsed))
        return sorted(groups)

    async def get_user_groups(self, auth_state: dict) -> set[str]:
        return set()  # groups are computed with the handler in authenticate (they are merged)

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> dict | None:
        model = await super().authenticate(handler, data, **kwargs)
        if not model:
            return model
        user_info = (model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        if self.staff_values and not set(self.claim_values(user_info)) & set(self.staff_values):
            self.log.warning("SSO audit: outcome=refused reason=not_staff user=%s", model["name"])
            return None
        model["groups"] = merged_groups(handler, model["name"], self.granted_groups(model["name"], user_info))
        model["user_info"] = {"display_name": user_info.get("name", ""), "email": user_info.get("email", ""),
                              "sso": {"provider": self.provider_id}}
        self.log.info("SSO audit: outcome=accepted user=%s", model["name"])
        return model


def _short_group(value: str) -> tuple[str, str] | None:
    parts = value.split(":")
    if len(parts) == 2 and parts[1] in COURSE_ROLES:
        return parts[0], parts[1]
    return None


def make_sso_authenticator(coursehub: Any) -> CampusSsoAuthenticator:
    s = coursehub.sso
    sso = CampusSsoAuthenticator(parent=coursehub, config=coursehub.config)
    sso.coursehub = coursehub
    sso.login_service = s.get("login_service") or "Campus sign-in"
    sso.client_id = s["client_id"]
    sso.client_secret = os.environ.get(s.get("client_secret_env") or "", "")
    sso.authorize_url = s["authorize_url"]
    sso.token_url = s["token_url"]
    sso.userdata_url = s["userdata_url"]
    sso.scope = list(s.get("scope") or ["openid"])
    sso.username_claim = s.get("username_claim") or "sub"
    sso.roles_claim = s.get("roles_claim") or ""
    sso.staff_values = list(s.get("staff_values") or [])
    sso.link_claim = s.get("link_claim") or ""
    if coursehub.public_url:
        sso.oauth_callback_url = f"{coursehub.public_url}/hub/sso/callback"
    sso.manage_groups = True
    sso.allow_all = True
    sso.custom_403_message = ("Campus sign-in is for course staff. Students: open coursehub from your course "
                              "in the LMS.")
    return sso


def sso_handlers(sso: CampusSsoAuthenticator) -> list[tuple[str, type]]:
    """The oauthenticator handlers, bound to the SSO authenticator instead of the hub's."""

    class SsoLoginHandler(OAuthLoginHandler):
        @property
        def authenticator(self) -> CampusSsoAuthenticator:
            return sso

    class SsoCallbackHandler(OAuthCallbackHandler):
        @property
        def authenticator(self) -> CampusSsoAuthenticator:
            return sso

    return [("/sso/login", SsoLoginHandler), ("/sso/callback", SsoCallbackHandler)]
