"""The base of every local LMS handler: loopback only, and the local LMS (key, pending launches,
services) kept on the authenticator."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.handlers import BaseHandler
from tornado import web

from ..lti.local_registration import CLIENT_ID, PLATFORM
from ..lti.web import SecurityHeaders
from ..settings import is_loopback
from .lms import LocalLms
from .services import LocalServices, services_path


class LocalLmsBase(SecurityHeaders, BaseHandler):
    """Loopback only; POSTs go through JupyterHub's XSRF check (the page's form carries `_xsrf`)."""

    def prepare(self) -> Any:
        auth = self.authenticator
        if not getattr(auth, "local_lms", False) or not is_loopback(auth.hub_ip) \
                or not is_loopback(self.request.remote_ip or ""):
            raise web.HTTPError(403, "The local LMS page is only available on this machine, in local mode.")
        return super().prepare()

    @property
    def lms(self) -> LocalLms:
        auth = self.authenticator
        lms = getattr(auth, "_coursehub_local_lms", None)
        if lms is None:
            reg = auth.registry.by_name(PLATFORM)
            services = LocalServices(services_path(Path(auth.state_dir)), CLIENT_ID, reg.token_url,
                                     lambda: auth.tool_key.public_jwk())
            lms = LocalLms(Path(auth.state_dir), reg.issuer, services)
            auth._coursehub_local_lms = lms
        return lms

    def hub_origin(self) -> str:
        """scheme://host:port of the hub, from the local-lms registration (hub.public_url or ip:port)."""
        parts = urlsplit(self.authenticator.registry.by_name(PLATFORM).auth_login_url)
        return f"{parts.scheme}://{parts.netloc}"
