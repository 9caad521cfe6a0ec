"""The hub's authenticator: LTI 1.3 launches from registered LMSes, plus optional campus SSO.

`CoursehubAuthenticator` subclasses jupyterhub-ltiauthenticator's `LTI13Authenticator` (its
handlers are subclassed in `coursehub.platform.lti.handlers`) and mounts, on the same hub, the
campus sign-in handlers of `coursehub.platform.sso` (oauthenticator's GenericOAuthenticator) and,
in local mode, the built-in LMS page. `configure(c, settings, catalog)` is what hubconfig calls.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from ltiauthenticator.lti13.auth import LTI13Authenticator
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Int, List, Unicode

from coursehub.startup import import_before_threads

from .courses import Catalog, Course
from .groups import course_group, course_group_prefix, existing_groups
from .lti import handlers as lti_handlers
from .lti import services as lti_services
from .lti.deep_linking_pages import RETURN_PATH as DEEP_LINK_RETURN_PATH
from .lti.deep_linking_pages import DeepLinkReturnHandler
from .lti.identity import username_candidates
from .lti.keys import KeyPair, load_or_create_key_pair, tool_key_path
from .lti.local_registration import registration as local_registration
from .lti.open_page import OpenHandler
from .lti.opening import exchange_fetcher, preload
from .lti.registration_pages import LINKS_PATH as REGISTRATION_LINKS_PATH
from .lti.registration_pages import REGISTER_PATH, RegisterHandler, RegistrationLinksHandler
from .lti.registration_store import RegistrationStore
from .lti.registry import LaunchRegistration, Registry
from .lti.store import LtiStore
from .lti.validation import LaunchValidator, ValidLaunch
from .lti.web import SecurityHeaders
from .settings import Settings

log = logging.getLogger("JupyterHub")


class LoginPageHandler(SecurityHeaders, BaseHandler):
    """`/hub/login`: there is no password here; say where sign-in happens instead."""

    async def get(self) -> None:
        auth = self.authenticator
        user = self.current_user
        if user is not None:
            return self.redirect(self.get_next_url(user))
        html = await self.render_template(
            "coursehub_login.html",
            sso_url=url_path_join(self.hub.base_url, "sso/login") if auth.sso_authenticator else None,
            sso_name=auth.sso_authenticator.login_service if auth.sso_authenticator else "",
            local_lms_url=url_path_join(self.hub.base_url, "lms") if auth.local_lms else None,
            next=self.get_argument("next", "")[:2048],
        )
        self.finish(html)


class CoursehubAuthenticator(LTI13Authenticator):
    login_service = "your course's LMS"

    login_handler = lti_handlers.LoginInitHandler
    callback_handler = lti_handlers.CallbackHandler
    config_handler = lti_handlers.ToolConfigHandler

    platforms = List(Dict(), config=True, help="LTI platform registrations (set by coursehub from settings).")
    catalog = AnyTrait(config=True, help="The coursehub Catalog of courses.")
    state_dir = Unicode(config=True, help="Where the tool key and LTI tables live.")
    store_url = Unicode("", config=True, help="SQLAlchemy URL of the LTI tables (default: SQLite in state_dir).")
    leeway_seconds = Int(60, config=True)
    max_age_seconds = Int(600, config=True)
    nonce_ttl_seconds = Int(900, config=True)
    jwks_cache_seconds = Int(300, config=True)
    jwks_min_refetch_seconds = Int(10, config=True)
    local_lms = Bool(False, config=True, help="Mount the built-in LMS page (local mode, loopback only).")
    hub_ip = Unicode("127.0.0.1", config=True)
    public_url = Unicode("", config=True, help="hub.public_url from the settings ('' = from each request).")
    sso = Dict(config=True, help="Campus SSO settings (auth.sso), empty when off.")
    link_claim = Unicode("", config=True, help="Claim linking LTI and SSO identities of one person ('' = off).")
    exchange_enabled = Bool(True, config=True, help="Assignments come through the grading service's exchange.")
    prestart_kernel = Bool(True, config=True, help="Start an opened assignment notebook's kernel while Lab loads.")
    registration_hosts = List(Unicode(), config=True,
                              help="Hosts LMSes may register from dynamically ([] = any public host).")
    allow_loopback_registration = Bool(False, config=True,
                                       help="Dynamic registration from http://127.0.0.1 (local mode only).")

    # --- shared objects -------------------------------------------------------------------------
    @cached_property
    def registry(self) -> Registry:
        configured = [LaunchRegistration.from_dict(p) for p in self.platforms]
        names = {r.name for r in configured}
        dynamic = [r for r in self.registration_store.all() if r.name not in names]  # YAML wins a name clash
        return Registry(configured + dynamic, jwks_cache_seconds=self.jwks_cache_seconds,
                        min_refetch_seconds=self.jwks_min_refetch_seconds)

    @cached_property
    def registration_store(self) -> RegistrationStore:
        return RegistrationStore(self.store.engine)

    @cached_property
    def store(self) -> LtiStore:
        return LtiStore(self.store_url or f"sqlite:///{Path(self.state_dir) / 'lti.sqlite'}")

    @cached_property
    def validator(self) -> LaunchValidator:
        return LaunchValidator(self.registry, leeway=self.leeway_seconds, max_age=self.max_age_seconds,
                               consume_nonce=self.store.consume_nonce,
                               extra_strings=(self.link_claim,) if self.link_claim else ())

    @cached_property
    def tool_key(self) -> KeyPair:
        return load_or_create_key_pair(tool_key_path(Path(self.state_dir)))

    @property
    def assignment_fetcher(self):  # noqa: ANN201
        """The exchange's fetch (grading on), else None: the fallback copy of the local platform."""
        return exchange_fetcher() if self.exchange_enabled else None

    @property
    def released_cache_dir(self) -> Path:
        return Path(self.state_dir) / "lti" / "released"

    @cached_property
    def sso_authenticator(self):  # noqa: ANN201
        if not self.sso.get("enabled"):
            return None
        from .sso import make_sso_authenticator

        return make_sso_authenticator(self)

    # --- JupyterHub hooks -------------------------------------------------------------------------
    def login_url(self, base_url: str) -> str:
        return url_path_join(base_url, "login")

    def jwks_url(self, base_url: str) -> str:
        return url_path_join(base_url, "lti13", "jwks")

    def get_handlers(self, app: Any) -> list:
        _ = self.tool_key  # generated on first start, not on the first LMS request
        import_before_threads()  # nbformat: the preload thread and launch threads import it
        threading.Thread(target=preload, name="coursehub-preload", daemon=True).start()
        handlers = [
            ("/login", LoginPageHandler),
            ("/lti13/oauth_login", self.login_handler),
            (self.callback_url(""), self.callback_handler),
            (self.config_json_url(""), self.config_handler),
            (self.jwks_url(""), lti_handlers.ToolJwksHandler),
            ("/coursehub/open", OpenHandler),
            ("/" + DEEP_LINK_RETURN_PATH, DeepLinkReturnHandler),
            ("/" + REGISTRATION_LINKS_PATH, RegistrationLinksHandler),
            ("/" + REGISTER_PATH, RegisterHandler),
        ]
        if self.local_lms:
            from .local_lms.handlers import local_lms_handlers

            handlers += local_lms_handlers()
        if self.sso_authenticator is not None:
            from .sso import sso_handlers

            handlers += sso_handlers(self.sso_authenticator)
        return [(path, with_security_headers(cls), *rest) for path, cls, *rest in handlers]

    async def authenticate(self, handler: Any, data: dict | None = None) -> dict | None:
        """`data` comes from the launch handler, already validated: {launch, course, role}."""
        if not data or not isinstance(data.get("launch"), ValidLaunch):
            return None
        launch: ValidLaunch = data["launch"]
        course: Course = data["course"]
        claims = launch.claims
        link_value = str(claims.get(self.link_claim) or "") or None if self.link_claim else None
        forced = None
        if link_value:
            linked = self.store.find_linked(link_value, exclude_issuer=launch.issuer)
            forced = linked.username if linked else None
        identity = self.store.claim_identity(
            launch.issuer, launch.subject,
            username_candidates(launch.registration.name, launch.issuer, launch.subject),
            display_name=str(claims.get("name") or ""), email=str(claims.get("email") or ""),
            link_value=link_value, username=forced,
        )
        return {
            "name": identity.username,
            "groups": launch_groups(handler, identity.username, course.id, data["role"]),
            "auth_state": {"lti": claims, "platform": launch.registration.name, "course": course.id},
            "user_info": {
                "display_name": identity.display_name, "email": identity.email,
                "lti": {"platform": launch.registration.name, "issuer": launch.issuer, "sub": launch.subject},
            },
        }

    async def refresh_user(self, user: Any, handler: Any = None) -> bool:
        return True  # a launch is the refresh: nothing to fetch from an LMS in between


def with_security_headers(cls: type) -> type:
    """`cls`, or a subclass of it that adds the security headers (e.g. oauthenticator's SSO handlers)."""
    if issubclass(cls, SecurityHeaders):
        return cls
    return type(cls.__name__, (SecurityHeaders, cls), {"__doc__": cls.__doc__, "__module__": cls.__module__})


def launch_groups(handler: Any, username: str, course_id: str, role: str) -> list[str]:
    """The user's groups after a launch: other courses untouched; in this course, the role the LMS
    sends now (so a TA who becomes a student in the LMS is a student here too)."""
    keep = {g for g in existing_groups(handler, username) if not g.startswith(course_group_prefix(course_id))}
    return sorted(keep | {course_group(course_id, role)})


def configure(c: Any, settings: Settings, catalog: Catalog) -> None:
    """Hub configuration for LTI (+ SSO, + the local LMS page); called by configure_sign_in."""
    lti = settings.auth.lti
    platforms = [p.model_dump() for p in lti.platforms] if lti.enabled else []
    local_lms = lti.local_lms and settings.local
    if local_lms and not any(p["name"] == "local-lms" for p in platforms):
        platforms.append(local_registration(settings).to_dict())
    for problem in lti_services.config_problems(settings, catalog):
        # `coursehub validate` reports these as errors; the hub starts, and refuses such launches.
        log.warning("course setting to fix: %s (launches it could match are refused as ambiguous)", problem)
    c.JupyterHub.authenticator_class = CoursehubAuthenticator
    a = c.CoursehubAuthenticator
    a.platforms = platforms
    a.catalog = catalog
    a.state_dir = str(settings.state_dir)
    a.leeway_seconds = lti.leeway_seconds
    a.max_age_seconds = lti.max_age_seconds
    a.nonce_ttl_seconds = lti.nonce_ttl_seconds
    a.jwks_cache_seconds = lti.jwks_cache_seconds
    a.jwks_min_refetch_seconds = lti.jwks_min_refetch_seconds
    a.local_lms = local_lms
    a.registration_hosts = list(lti.registration_hosts)
    a.allow_loopback_registration = settings.local
    a.exchange_enabled = settings.grading.enabled
    a.prestart_kernel = settings.spawner.prestart_kernel
    a.hub_ip = settings.hub.ip
    a.public_url = (settings.hub.public_url or "").rstrip("/")
    a.tool_name = "coursehub"
    a.tool_description = "Jupyter notebooks, assignments and textbooks for your course"
    if settings.hub.public_url:
        a.uri_scheme = "https" if settings.hub.public_url.startswith("https:") else "http"
    a.store_url = lti_services.store_url(settings)  # own tables (coursehub_lti_*), next to the hub's
    if settings.auth.sso.enabled:
        a.sso = settings.auth.sso.model_dump()
        a.link_claim = settings.auth.sso.link_claim or ""
    if os.environ.get("JUPYTERHUB_CRYPT_KEY"):
        c.Authenticator.enable_auth_state = True
    if settings.public_url().startswith("https:"):
        # The session cookies must survive the LMS's cross-site form post (and LMS iframes).
        c.JupyterHub.tornado_settings = {"cookie_options": {"samesite": "None", "secure": True}}


def configure_sign_in(c: Any, settings: Settings, catalog: Catalog) -> None:
    """Who may sign in and how: a development login, or LTI 1.3 with campus SSO (called by hubconfig
    locally and by kube/hub_setup.py in the z2jh hub pod)."""
    c.Authenticator.allow_all = True  # the launch (or SSO) is the gate; course roles do the rest
    c.Authenticator.manage_groups = True
    if settings.auth.dev_login:
        from .devauth import DevLoginAuthenticator

        c.JupyterHub.authenticator_class = DevLoginAuthenticator
        c.DevLoginAuthenticator.hub_ip = settings.hub.ip
        c.DevLoginAuthenticator.course_staff = {
            course.id: course.staff.model_dump() for course in catalog
        }
        return
    configure(c, settings, catalog)  # LTI 1.3, campus SSO and the local LMS page
