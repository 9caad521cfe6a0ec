"""What every hub handler coursehub adds shares: security headers, URLs from configuration, bounds.

- `SecurityHeaders`: JupyterHub sets `Content-Security-Policy: frame-ancestors 'none'` (or what the
  operator configured in `tornado_settings["headers"]`); our pages also get the matching
  `X-Frame-Options` for older browsers and `X-Content-Type-Options: nosniff`, error pages included.
- `public_origin`: the hub's origin for URLs given to browsers and LMSes comes from `hub.public_url`;
  only when none is configured does the request say it (the Host header never picks a server to
  call: internal calls use the spawner's own address, see `open_page.py`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jupyterhub.utils import get_browser_protocol
from tornado import web

#: Longest value of a login parameter we echo into a redirect (login_hint, lti_message_hint, ...):
#: the whole redirect must stay within what proxies carry (often 8 KiB per header line).
ECHO_MAX = 2048
#: Longest redirect we send; above it, proxies answer 502/503 instead of the browser following.
REDIRECT_MAX = 7000


class SecurityHeaders:
    """Mixin (before the JupyterHub handler class) adding anti-framing and nosniff headers."""

    def set_default_headers(self: Any) -> None:
        super().set_default_headers()  # type: ignore[misc]
        self.set_header("X-Content-Type-Options", "nosniff")
        csp = self._headers.get("Content-Security-Policy", "")
        ancestors = _frame_ancestors(csp)
        if ancestors is None:
            ancestors = "'none'"
            self.set_header("Content-Security-Policy", "; ".join(p for p in (csp, "frame-ancestors 'none'") if p))
        if "X-Frame-Options" not in self._headers:
            xfo = {"'none'": "DENY", "'self'": "SAMEORIGIN"}.get(ancestors)
            if xfo:  # other values (an LMS origin allowed to frame) cannot be said with X-Frame-Options
                self.set_header("X-Frame-Options", xfo)


def _frame_ancestors(csp: str) -> str | None:
    for directive in csp.split(";"):
        parts = directive.strip().split(None, 1)
        if parts and parts[0].lower() == "frame-ancestors":
            return parts[1].strip() if len(parts) > 1 else "'none'"
    return None


def public_origin(auth: Any, request: Any) -> str:
    """scheme://host[:port] of the hub as browsers and LMSes reach it: `hub.public_url` when set."""
    configured = getattr(auth, "public_url", "")
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{get_browser_protocol(request)}://{request.host}"


def public_scheme(auth: Any, request: Any) -> str:
    configured = getattr(auth, "public_url", "")
    return urlsplit(configured).scheme if configured else get_browser_protocol(request)


def bounded(value: str, limit: int, what: str) -> str:
    """`value`, or a 400 saying which parameter is too long (never echoing it)."""
    if len(value) > limit:
        raise web.HTTPError(400, f"{what} is longer than {limit} characters.")
    return value
