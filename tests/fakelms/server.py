"""A fake LMS on 127.0.0.1, in a thread: what an LTI 1.3 platform does, plus faults on demand.

- its own RSA keys and a JWKS endpoint (`rotate_key()`, faults: HTTP errors, garbage, slowness);
- an OIDC authentication endpoint that answers the tool's login redirect with an auto-posting
  form carrying a signed id_token (the launch is described by a `LaunchSpec`, which can also
  forge it: wrong key, `alg: none`, HS256 with the public key, claims changed or removed);
- a token endpoint (client_credentials with a JWT client assertion verified against the tool's
  JWKS), AGS line items and scores, NRPS memberships paged with Link headers;
- `inject_fault(endpoint, status, times, retry_after)` for 429/503 answers; `expire_tokens()`;
- a tiny OIDC provider for campus SSO tests (`/oidc/authorize`, `/oidc/token`, `/oidc/userinfo`):
  it signs in whoever `sso_user` (a dict of claims) says.

    with running_fake_lms(tool_jwks_url=...) as lms:
        lms.platform_settings()   # an auth.lti.platforms entry for the hub's settings
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from coursehub.platform.lti import claims as C
from coursehub.platform.lti.keys import KeyPair, generate_key_pair

ROLE = {
    "student": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
    "instructor": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "ta": "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class LaunchSpec:
    """One launch the fake LMS will answer for, and how to (mis)sign it."""

    sub: str = "student-1"
    roles: list[str] = field(default_factory=lambda: [ROLE["student"]])
    context_id: str = "ctx-101"
    deployment_id: str = "dep-1"
    name: str = "Sam Student"
    email: str = "sam@example.edu"
    custom: dict = field(default_factory=dict)
    target_link_uri: str = ""
    message_type: str = C.RESOURCE_LINK_REQUEST
    #: Claims to set (after the defaults) and to remove.
    extra: dict = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    #: "ok" | "other_key" (bad signature) | "unknown_kid" | "none" | "hs256_public_key" | "raw" (a valid
    #: signature over claims PyJWT would refuse to encode, e.g. a non-string `iss`)
    signing: str = "ok"
    #: Seconds added to iat/exp (negative: in the past).
    iat_offset: int = 0
    exp_seconds: int = 300
    with_services: bool = True
    #: Deep linking requests: fields of the deep_linking_settings claim over the defaults.
    dl_settings: dict = field(default_factory=dict)


class FakeLms:
    def __init__(self, *, client_id: str = "coursehub-test", tool_jwks_url: str | None = None):
        self.client_id = client_id
        self.tool_jwks_url = tool_jwks_url
        self.keys: list[KeyPair] = [generate_key_pair()]
        self.port = 0
        self.pending: dict[str, LaunchSpec] = {}
        self.issued_tokens: list[str] = []
        self.jwks_requests = 0
        self.jwks_fault: str | None = None  # "500" | "garbage" | "slow"
        #: Seconds every JWKS answer takes (a remote LMS is not on loopback).
        self.jwks_delay = 0.0
        self.faults: dict[str, list[tuple[int, int | None]]] = {}
        self.access_tokens: dict[str, float] = {}
        self.lineitems: dict[str, dict] = {}
        self.scores: dict[str, list[dict]] = {}
        self.members: list[dict] = []
        self.page_size = 2
        self.auth_requests: list[dict] = []
        self.sso_user: dict = {"sub": "prof.ada", "name": "Ada Prof", "email": "ada@uni.example"}
        self.sso_codes: dict[str, dict] = {}
        self.sso_tokens: dict[str, dict] = {}
        #: Links created from deep linking responses: {"context", "deployment", "item", "data"}.
        self.created_links: list[dict] = []
        #: Deep linking responses refused, with the reason.
        self.refused_responses: list[str] = []
        #: Dynamic registration: the bearer token the registration endpoint wants, what tools sent.
        self.registration_token = secrets.token_urlsafe(16)
        self.tool_registrations: list[dict] = []
        self.openid_overrides: dict = {}
        self._loop: IOLoop | None = None
        self._server: HTTPServer | None = None

    # --- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/lms"

    def platform_settings(self, name: str = "fakelms", deployments: tuple[str, ...] = ("dep-1",)) -> dict:
        return {"name": name, "issuer": self.issuer, "client_ids": [self.client_id],
                "deployment_ids": list(deployments), "auth_login_url": f"{self.url}/auth",
                "jwks_url": f"{self.url}/jwks", "token_url": f"{self.url}/token", "algorithms": ["RS256"]}

    def ags_claim(self, context_id: str) -> dict:
        return {"scope": list(C.AGS_SCOPES[:2]) + [C.AGS_SCOPES[3]],
                "lineitems": f"{self.url}/ags/{context_id}/lineitems",
                "lineitem": f"{self.url}/ags/{context_id}/lineitems/1"}

    def nrps_claim(self, context_id: str) -> dict:
        return {"context_memberships_url": f"{self.url}/nrps/{context_id}/memberships",
                "service_versions": ["2.0"]}

    def add_lineitem(self, context_id: str, fields: dict) -> str:
        """A new line item (a gradebook column) in a context; returns its URL."""
        url = f"{self.url}/ags/{context_id}/lineitems/{len(self.lineitems) + 1}"
        self.lineitems[url] = {**fields, "id": url, "_context": context_id}
        return url

    def lineitems_of(self, context_id: str) -> list[dict]:
        return [{k: v for k, v in i.items() if not k.startswith("_")} for i in self.lineitems.values()
                if i["_context"] == context_id]

    def link_launch(self, link: dict, **spec: Any) -> LaunchSpec:
        """A launch of a link made by deep linking, as the LMS sends it: the item's URL and custom
        parameters, the link's own resource link id and, when it has one, its line item in the AGS claim."""
        item = link["item"]
        extra = {C.RESOURCE_LINK: {"id": link["resource_link_id"], "title": item.get("title", "")}}
        if link["lineitem"]:
            extra[C.AGS_ENDPOINT] = {**self.ags_claim(link["context"]), "lineitem": link["lineitem"]}
        return LaunchSpec(context_id=link["context"], deployment_id=link["deployment"], custom=item.get("custom", {}),
                          target_link_uri=item.get("url", ""), **{"extra": extra, **spec})

    # --- keys and faults -------------------------------------------------------------------------
    @property
    def key(self) -> KeyPair:
        return self.keys[-1]

    def rotate_key(self, keep_old: bool = True) -> KeyPair:
        new = generate_key_pair()
        self.keys = [*self.keys, new] if keep_old else [new]
        return new

    def inject_fault(self, endpoint: str, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """The next `times` calls of `endpoint` ("token", "scores", "lineitems", "memberships",
        "jwks") answer `status` (with Retry-After when given)."""
        self.faults.setdefault(endpoint, []).extend([(status, retry_after)] * times)

    def expire_tokens(self) -> None:
        self.access_tokens = {t: 0.0 for t in self.access_tokens}

    # --- launches --------------------------------------------------------------------------------
    def prepare(self, spec: LaunchSpec) -> str:
        hint = secrets.token_urlsafe(12)
        self.pending[hint] = spec
        return hint

    def login_initiation(self, hub_url: str, hint: str, spec: LaunchSpec, client_id: str | None = None) -> str:
        args = {"iss": self.issuer, "login_hint": hint,
                "target_link_uri": spec.target_link_uri or f"{hub_url}/hub/coursehub/open",
                "client_id": client_id or self.client_id, "lti_deployment_id": spec.deployment_id}
        return f"{hub_url}/hub/lti13/oauth_login?{urlencode(args)}"

    def claims_for(self, spec: LaunchSpec, nonce: str | None) -> dict:
        now = int(time.time()) + spec.iat_offset
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": spec.sub, "iat": now, "exp": now + spec.exp_seconds,
            "nonce": nonce, "name": spec.name, "email": spec.email,
            C.MESSAGE_TYPE: spec.message_type, C.VERSION: "1.3.0", C.DEPLOYMENT_ID: spec.deployment_id,
            C.TARGET_LINK_URI: spec.target_link_uri or "https://tool.example/hub/coursehub/open",
            C.RESOURCE_LINK: {"id": f"rl-{spec.context_id}", "title": "A link"},
            C.ROLES: spec.roles,
            C.CONTEXT: {"id": spec.context_id, "label": spec.context_id.upper(), "title": f"Course {spec.context_id}"},
            C.CUSTOM: spec.custom,
        }
        if spec.message_type == C.DEEP_LINKING_REQUEST:
            del claims[C.RESOURCE_LINK]
            claims[C.DEEP_LINKING_SETTINGS] = {
                "deep_link_return_url": f"{self.url}/deep_link_return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": False,
                "auto_create": True, "data": "dl-data-" + spec.context_id, **spec.dl_settings}
        if spec.with_services:
            claims[C.AGS_ENDPOINT] = self.ags_claim(spec.context_id)
            claims[C.NRPS] = self.nrps_claim(spec.context_id)
        claims.update(spec.extra)
        for k in spec.drop:
            claims.pop(k, None)
        return claims

    def sign(self, claims: dict, signing: str = "ok") -> str:
        if signing == "ok":
            return jwt.encode(claims, self.key.private_pem, "RS256", headers={"kid": self.key.kid})
        if signing == "raw":
            return jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), self.key.private_pem, "RS256",
                                              headers={"kid": self.key.kid, "typ": "JWT"})
        if signing == "other_key":
            return jwt.encode(claims, generate_key_pair().private_pem, "RS256", headers={"kid": self.key.kid})
        if signing == "unknown_kid":
            other = generate_key_pair()
            return jwt.encode(claims, other.private_pem, "RS256", headers={"kid": "no-such-key"})
        body = _b64(json.dumps(claims).encode())
        if signing == "none":
            return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': self.key.kid}).encode())}.{body}."
        if signing == "hs256_public_key":
            from cryptography.hazmat.primitives import serialization

            public_pem = self.key.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.key.kid}).encode())
            sig = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
            return f"{head}.{body}.{_b64(sig)}"
        raise ValueError(signing)

    # --- server ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        return web.Application([
            (r"/jwks", JwksHandler, {"lms": self}),
            (r"/auth", AuthHandler, {"lms": self}),
            (r"/token", TokenHandler, {"lms": self}),
            (r"/ags/([^/]+)/lineitems", LineItemsHandler, {"lms": self}),
            (r"/ags/([^/]+)/lineitems/([^/]+)", LineItemHandler, {"lms": self}),
            (r"/ags/([^/]+)/lineitems/([^/]+)/scores", ScoresHandler, {"lms": self}),
            (r"/nrps/([^/]+)/memberships", MembershipsHandler, {"lms": self}),
            (r"/deep_link_return", DeepLinkReturnHandler, {"lms": self}),
            (r"/\.well-known/openid-configuration", OpenIdConfigurationHandler, {"lms": self}),
            (r"/register", RegistrationHandler, {"lms": self}),
            (r"/oidc/authorize", OidcAuthorizeHandler, {"lms": self}),
            (r"/oidc/token", OidcTokenHandler, {"lms": self}),
            (r"/oidc/userinfo", OidcUserinfoHandler, {"lms": self}),
        ])

    def sso_settings(self, **extra: Any) -> dict:
        """An auth.sso section for the hub's settings (client secret: $COURSEHUB_SSO_CLIENT_SECRET)."""
        return {"enabled": True, "client_id": "hub-sso", "authorize_url": f"{self.url}/oidc/authorize",
                "token_url": f"{self.url}/oidc/token", "userdata_url": f"{self.url}/oidc/userinfo", **extra}

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            self._loop = IOLoop.current()
            self._server = HTTPServer(self.app())
            sockets = __import__("tornado.netutil", fromlist=["bind_sockets"]).bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            self._server.add_sockets(sockets)
            ready.set()
            self._loop.start()

        self._thread = threading.Thread(target=run, name="fake-lms", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is None:
            return

        def shutdown() -> None:
            self._server.stop()
            self._loop.stop()

        self._loop.add_callback(shutdown)
        self._thread.join(10)

    def take_fault(self, endpoint: str) -> tuple[int, int | None] | None:
        queue = self.faults.get(endpoint)
        return queue.pop(0) if queue else None


@contextmanager
def running_fake_lms(**kwargs: Any) -> Iterator[FakeLms]:
    lms = FakeLms(**kwargs)
    lms.start()
    try:
        yield lms
    finally:
        lms.stop()


class Base(web.RequestHandler):
    endpoint = ""

    def initialize(self, lms: FakeLms) -> None:
        self.lms = lms

    def prepare(self) -> None:
        fault = self.lms.take_fault(self.endpoint) if self.endpoint else None
        if fault:
            status, retry_after = fault
            self.set_status(status)
            if retry_after is not None:
                self.set_header("Retry-After", str(retry_after))
            self.finish({"error": f"injected {status}"})

    def write_json(self, data: Any, status: int = 200, content_type: str = "application/json") -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(json.dumps(data))

    def check_token(self, scope: str) -> bool:
        header = self.request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expires = self.lms.access_tokens.get(token)
        if expires is None or expires < time.time():
            self.write_json({"error": "invalid_token"}, 401)
            return False
        return True


class JwksHandler(Base):
    endpoint = "jwks"

    async def get(self) -> None:
        self.lms.jwks_requests += 1
        if self.lms.jwks_fault == "500":
            return self.write_json({"error": "down"}, 500)
        if self.lms.jwks_fault == "garbage":
            self.finish("<html>not json</html>")
            return
        if self.lms.jwks_fault == "slow":
            await asyncio.sleep(30)
        if self.lms.jwks_delay:
            await asyncio.sleep(self.lms.jwks_delay)
        self.write_json({"keys": [k.public_jwk() for k in self.lms.keys]})


class AuthHandler(Base):
    """The platform's OIDC authentication endpoint (the tool redirects the browser here)."""

    def check_xsrf_cookie(self) -> None:
        return

    def get(self) -> None:
        args = {k: self.get_argument(k, "") for k in (
            "client_id", "redirect_uri", "login_hint", "nonce", "state", "response_type", "response_mode",
            "scope", "prompt")}
        self.lms.auth_requests.append(args)
        spec = self.lms.pending.get(args["login_hint"])
        if spec is None or args["response_type"] != "id_token" or args["response_mode"] != "form_post":
            raise web.HTTPError(400, "unknown login_hint or not an LTI authentication request")
        token = self.lms.sign(self.lms.claims_for(spec, args["nonce"] or None), spec.signing)
        self.lms.issued_tokens.append(token)
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                         for k, v in (("id_token", token), ("state", args["state"])))
        self.finish(f'<!DOCTYPE html><html><body><form id="f" method="post" action="{html.escape(args["redirect_uri"])}">'
                    f'{inputs}</form><script>document.getElementById("f").submit()</script></body></html>')

    post = get


class TokenHandler(Base):
    """client_credentials with a JWT client assertion signed by the tool's key."""

    endpoint = "token"

    def check_xsrf_cookie(self) -> None:
        return

    def post(self) -> None:
        if self.get_body_argument("grant_type", "") != "client_credentials" or self.get_body_argument(
                "client_assertion_type", "") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self.write_json({"error": "unsupported_grant_type"}, 400)
        assertion = self.get_body_argument("client_assertion", "")
        try:
            jwks = json.load(urllib.request.urlopen(self.lms.tool_jwks_url, timeout=5))  # noqa: S310 - loopback
            kid = jwt.get_unverified_header(assertion).get("kid")
            key = next(jwt.PyJWK(k) for k in jwks["keys"] if k.get("kid") == kid)
            claims = jwt.decode(assertion, key.key, algorithms=["RS256"], audience=f"{self.lms.url}/token",
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except (StopIteration, jwt.PyJWTError, OSError, ValueError, KeyError):
            return self.write_json({"error": "invalid_client"}, 401)
        if claims["iss"] != self.lms.client_id or claims["sub"] != self.lms.client_id:
            return self.write_json({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(24)
        self.lms.access_tokens[token] = time.time() + 3600
        self.write_json({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                         "scope": self.get_body_argument("scope", "")})


class LineItemsHandler(Base):
    endpoint = "lineitems"

    def check_xsrf_cookie(self) -> None:
        return

    def get(self, context: str) -> None:
        if self.check_token("lineitem"):
            items = [i for i in self.lms.lineitems.values() if i["_context"] == context]
            self.write_json([{k: v for k, v in i.items() if not k.startswith("_")} for i in items],
                            content_type="application/vnd.ims.lis.v2.lineitemcontainer+json")

    def post(self, context: str) -> None:
        if not self.check_token("lineitem"):
            return
        item = self.lms.lineitems[self.lms.add_lineitem(context, json.loads(self.request.body or b"{}"))]
        self.write_json({k: v for k, v in item.items() if not k.startswith("_")}, 201,
                        content_type="application/vnd.ims.lis.v2.lineitem+json")


class LineItemHandler(Base):
    endpoint = "lineitems"

    def get(self, context: str, n: str) -> None:
        if self.check_token("lineitem"):
            item = self.lms.lineitems.get(f"{self.lms.url}/ags/{context}/lineitems/{n}")
            if item is None:
                return self.write_json({"error": "not found"}, 404)
            self.write_json({k: v for k, v in item.items() if not k.startswith("_")})

    def check_xsrf_cookie(self) -> None:
        return

    def put(self, context: str, n: str) -> None:
        """Update a line item's label or maximum (AGS 2.0 3.2.8); its results stay."""
        if self.check_token("lineitem"):
            url = f"{self.lms.url}/ags/{context}/lineitems/{n}"
            item = self.lms.lineitems.get(url)
            if item is None:
                return self.write_json({"error": "not found"}, 404)
            body = json.loads(self.request.body or b"{}")
            item.update({k: v for k, v in body.items() if k in ("label", "scoreMaximum", "resourceId", "tag")})
            self.write_json({k: v for k, v in item.items() if not k.startswith("_")},
                            content_type="application/vnd.ims.lis.v2.lineitem+json")


class ScoresHandler(Base):
    endpoint = "scores"

    def check_xsrf_cookie(self) -> None:
        return

    def post(self, context: str, n: str) -> None:
        if not self.check_token("score"):
            return
        if self.request.headers.get("Content-Type", "").split(";")[0] != "application/vnd.ims.lis.v1.score+json":
            return self.write_json({"error": "wrong content type"}, 415)
        score = json.loads(self.request.body or b"{}")
        self.lms.scores.setdefault(f"{self.lms.url}/ags/{context}/lineitems/{n}", []).append(score)
        self.set_status(204)
        self.finish()


class MembershipsHandler(Base):
    endpoint = "memberships"

    def get(self, context: str) -> None:
        if not self.check_token("nrps"):
            return
        page = int(self.get_argument("page", "1"))
        size = self.lms.page_size
        members = self.lms.members[(page - 1) * size: page * size]
        if page * size < len(self.lms.members):
            self.set_header("Link", f'<{self.lms.url}/nrps/{context}/memberships?page={page + 1}>; rel="next"')
        self.write_json({"id": self.request.full_url(), "context": {"id": context}, "members": members},
                        content_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")



class DeepLinkReturnHandler(Base):
    """Receives an LtiDeepLinkingResponse and verifies it with the tool's JWKS, as a platform does."""

    def check_xsrf_cookie(self) -> None:
        return

    def post(self) -> None:
        token = self.get_body_argument("JWT", "")
        try:
            claims = verify_tool_jwt(self.lms, token)
        except (StopIteration, jwt.PyJWTError, OSError, ValueError, KeyError) as e:
            self.lms.refused_responses.append(type(e).__name__)
            return self.write_json({"error": "invalid response", "why": type(e).__name__}, 400)
        problems = [k for k, ok in (
            ("iss", claims.get("iss") == self.lms.client_id),
            ("message_type", claims.get(C.MESSAGE_TYPE) == C.DEEP_LINKING_RESPONSE),
            ("version", claims.get(C.VERSION) == "1.3.0"),
            ("deployment_id", claims.get(C.DEPLOYMENT_ID) in ("dep-1", "dep-2")),
            ("nonce", bool(claims.get("nonce"))),
            ("data", str(claims.get(C.DL_DATA, "")).startswith("dl-data-")),
        ) if not ok]
        if problems:
            self.lms.refused_responses.append(",".join(problems))
            return self.write_json({"error": "invalid response", "why": problems}, 400)
        context = claims[C.DL_DATA].removeprefix("dl-data-")
        for item in claims.get(C.DL_CONTENT_ITEMS, []):
            link = {"context": context, "deployment": claims[C.DEPLOYMENT_ID], "item": item,
                    "data": claims[C.DL_DATA], "resource_link_id": f"rl-{context}-{len(self.lms.created_links) + 1}",
                    "lineitem": None}
            if isinstance(item.get("lineItem"), dict):  # as Canvas and Moodle do: the link gets its column
                link["lineitem"] = self.lms.add_lineitem(context, {
                    **{k: v for k, v in item["lineItem"].items() if k in ("label", "scoreMaximum", "resourceId", "tag")},
                    "resourceLinkId": link["resource_link_id"]})
            self.lms.created_links.append(link)
        self.write_json({"created": len(claims.get(C.DL_CONTENT_ITEMS, []))})


def verify_tool_jwt(lms: FakeLms, token: str) -> dict:
    """A JWT the tool signed, verified with the key its JWKS publishes under the token's kid."""
    jwks = json.load(urllib.request.urlopen(lms.tool_jwks_url, timeout=5))  # noqa: S310 - loopback
    kid = jwt.get_unverified_header(token).get("kid")
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k.get("kid") == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=lms.issuer,
                      options={"require": ["iss", "aud", "exp", "iat", "nonce"]})


class OpenIdConfigurationHandler(Base):
    """The platform's OpenID configuration (LTI Dynamic Registration 1.0, section 3.4)."""

    def get(self) -> None:
        lms = self.lms
        self.write_json({
            "issuer": lms.issuer, "authorization_endpoint": f"{lms.url}/auth", "token_endpoint": f"{lms.url}/token",
            "jwks_uri": f"{lms.url}/jwks", "registration_endpoint": f"{lms.url}/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "fakelms", "version": "1.0",
                "messages_supported": [{"type": C.RESOURCE_LINK_REQUEST}, {"type": C.DEEP_LINKING_REQUEST}]},
            **lms.openid_overrides,
        })


class RegistrationHandler(Base):
    """The registration endpoint: takes the tool's metadata, answers with a new client id."""

    def check_xsrf_cookie(self) -> None:
        return

    def post(self) -> None:
        if self.request.headers.get("Authorization") != f"Bearer {self.lms.registration_token}":
            return self.write_json({"error": "invalid_token"}, 401)
        tool = json.loads(self.request.body or b"{}")
        self.lms.tool_registrations.append(tool)
        client_id = f"coursehub-dyn-{len(self.lms.tool_registrations)}"
        self.write_json({**tool, "client_id": client_id, "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            **tool.get("https://purl.imsglobal.org/spec/lti-tool-configuration", {}), "deployment_id": "dep-1"}})


class OidcAuthorizeHandler(Base):
    def get(self) -> None:
        code = secrets.token_urlsafe(12)
        self.lms.sso_codes[code] = dict(self.lms.sso_user)
        sep = "&" if "?" in self.get_argument("redirect_uri") else "?"
        self.redirect(f"{self.get_argument('redirect_uri')}{sep}{urlencode({'code': code, 'state': self.get_argument('state', '')})}")


class OidcTokenHandler(Base):
    def check_xsrf_cookie(self) -> None:
        return

    def post(self) -> None:
        claims = self.lms.sso_codes.pop(self.get_body_argument("code", ""), None)
        if claims is None:
            return self.write_json({"error": "invalid_grant"}, 400)
        token = secrets.token_urlsafe(16)
        self.lms.sso_tokens[token] = claims
        self.write_json({"access_token": token, "token_type": "Bearer", "expires_in": 600})


class OidcUserinfoHandler(Base):
    def get(self) -> None:
        token = self.request.headers.get("Authorization", "").split(" ", 1)[-1]
        claims = self.lms.sso_tokens.get(token)
        if claims is None:
            return self.write_json({"error": "invalid_token"}, 401)
        self.write_json(claims)
