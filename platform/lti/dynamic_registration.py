"""LTI Dynamic Registration 1.0, the tool's side: fetch the platform's OpenID configuration,
register with it, and turn its answer into a `LaunchRegistration`.

The hub makes outgoing requests to URLs a browser handed it, so each one is checked first (SSRF):
https only (plain http only to a loopback address, and only when the hub runs in local mode), no
credentials in URLs, no redirects, short timeouts, bounded bodies; the host must be on the
operator's allow-list when one is configured, and otherwise resolve to public addresses only. We
POST only to a registration endpoint on the configuration's own origin.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import httpclient
from .registry import ASYMMETRIC_ALGORITHMS, LaunchRegistration, origin_of

PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
MAX_BODY = 256 * 1024
TIMEOUT = 10.0


class RegistrationRefused(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class UrlPolicy:
    """Which platform URLs the hub may call: `allowed_hosts` (host or host:port; empty = any public
    host) and whether loopback http is allowed (local mode, tests)."""

    allowed_hosts: tuple[str, ...] = ()
    allow_loopback: bool = False

    def check(self, url: str, what: str) -> str:
        """`url` if the hub may call it, else RegistrationRefused."""
        parts = urlsplit(url)
        try:
            host, port = (parts.hostname or ""), parts.port
        except ValueError:
            host, port = "", None
        if len(url) > 2048 or not host or parts.username or parts.password or parts.fragment:
            raise RegistrationRefused("bad_url", f"The LMS's {what} is not a usable URL.")
        loopback = _is_loopback_literal(host)
        if parts.scheme == "http" and not (loopback and self.allow_loopback):
            raise RegistrationRefused("not_https", f"The LMS's {what} must be an https URL.")
        if parts.scheme not in ("http", "https"):
            raise RegistrationRefused("not_https", f"The LMS's {what} must be an https URL.")
        if loopback and not self.allow_loopback:
            raise RegistrationRefused("host_not_allowed", f"The LMS's {what} points at this machine.")
        netloc = host + (f":{port}" if port else "")
        if self.allowed_hosts and host not in self.allowed_hosts and netloc not in self.allowed_hosts:
            raise RegistrationRefused("host_not_allowed", f"The LMS's {what} is on a host the operators have not "
                                      "allowed (auth.lti.registration_hosts).")
        return url

    async def check_resolved(self, url: str) -> None:
        """Without an allow-list, the host must resolve to public addresses only."""
        host = urlsplit(url).hostname or ""
        if self.allowed_hosts or (self.allow_loopback and _is_loopback_literal(host)):
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise RegistrationRefused("unreachable", "The LMS's address could not be resolved.") from None
        for info in infos:
            if not ipaddress.ip_address(info[4][0]).is_global:
                raise RegistrationRefused("host_not_allowed", "The LMS's address is not a public one.")


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _call(policy: UrlPolicy, url: str, what: str, *, method: str = "GET", headers: dict[str, str],
                body: str | None = None) -> dict:
    """`url`'s JSON object, after the SSRF checks; any other outcome is a RegistrationRefused."""
    policy.check(url, what)
    await policy.check_resolved(url)
    try:
        resp = await httpclient.request(method, url, headers=headers, body=body, connect_timeout=TIMEOUT,
                                        request_timeout=TIMEOUT, max_bytes=MAX_BODY)
    except httpclient.ResponseTooLarge:
        raise RegistrationRefused("too_large", f"The LMS's {what} answered with too much data.") from None
    if resp.status == httpclient.NO_RESPONSE:
        raise RegistrationRefused("unreachable", f"The LMS's {what} could not be reached.")
    if not resp.ok:
        raise RegistrationRefused("platform_error", f"The LMS's {what} answered HTTP {resp.status}.")
    try:
        answer = json.loads(resp.body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RegistrationRefused("platform_error", f"The LMS's {what} did not answer with a JSON object.")
    return answer


def _string(config: dict, key: str, what: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise RegistrationRefused("bad_configuration", f"The LMS's {what} lacks a valid {key!r}.")
    return value


async def fetch_configuration(policy: UrlPolicy, config_url: str) -> dict:
    """The platform's OpenID configuration, checked against the URL it came from."""
    config = await _call(policy, config_url, "OpenID configuration", headers={"Accept": "application/json"})
    issuer = _string(config, "issuer", "OpenID configuration")
    if origin_of(issuer) != origin_of(config_url):
        raise RegistrationRefused("issuer_mismatch", "The LMS's OpenID configuration names an issuer on "
                                  "another host than the configuration itself.")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        policy.check(_string(config, key, "OpenID configuration"), key)
    if origin_of(config["registration_endpoint"]) != origin_of(config_url):
        raise RegistrationRefused("bad_configuration", "The LMS's registration endpoint is on another host.")
    return config


async def register(policy: UrlPolicy, config: dict, registration_token: str, tool: dict) -> dict:
    """POST the tool's metadata to the platform's registration endpoint; its answer (client_id, ...)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    answer = await _call(policy, config["registration_endpoint"], "registration endpoint", method="POST",
                         headers=headers, body=json.dumps(tool))
    _string(answer, "client_id", "registration answer")
    return answer


def registration_from(name: str, config: dict, answer: dict) -> LaunchRegistration:
    """The LaunchRegistration of a platform from its OpenID configuration and registration answer."""
    tool = answer.get(TOOL_CONFIG) if isinstance(answer.get(TOOL_CONFIG), dict) else {}
    deployment = tool.get("deployment_id")
    algs = config.get("id_token_signing_alg_values_supported")
    algorithms = tuple(a for a in algs if a in ASYMMETRIC_ALGORITHMS) if isinstance(algs, list) else ()
    return LaunchRegistration(
        name=name, issuer=config["issuer"], client_ids=(answer["client_id"],),
        deployment_ids=(deployment,) if isinstance(deployment, str) and 0 < len(deployment) <= 255 else (),
        auth_login_url=config["authorization_endpoint"], jwks_url=config["jwks_uri"],
        token_url=config["token_endpoint"], algorithms=algorithms or ("RS256",),
    )


def platform_name(config_url: str, wanted: str, taken: set[str]) -> str:
    """`wanted`, or a name from the LMS's host; made unique among `taken`."""
    base = wanted or re.sub(r"[^a-z0-9-]+", "-", (urlsplit(config_url).hostname or "lms").lower()).strip("-")
    base = (base or "lms")[:56]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name
