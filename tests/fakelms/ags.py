"""LTI Advantage services of the fake LMS: token endpoint, AGS line items and scores, NRPS rosters,
with fault injection. A tornado handler list that can be mounted in the fake LMS app or alone:

    state = AgsState(tool_jwk=tool_key.public_jwk(), client_id="tool-1")
    app = tornado.web.Application(ags_handlers(state))

URLs (relative to the server root): /token, /ctx/<context>/lineitems[/<n>[/scores]],
/ctx/<context>/memberships. `state.base_url` must be set to the server's root URL.

Faults (`state.faults`): a list of `Fault(kind, status, headers, times)` consumed in order for
requests of that kind ("token", "lineitems", "scores", "memberships"); `state.revoke_tokens()`
makes every issued token invalid (401), like a token expiring in the middle of a batch.

Like most LMSes it sends no ETag and has no create-if-absent: two POSTs for one resourceId make two
line items. `state.hold_creates` (an asyncio.Event) holds every line item POST until it is set, so a
test can make creates overlap. `state.after_page(ctx, page)` runs after each NRPS page is served,
so members can leave (or join) in the middle of a paged walk, as they do in a real course.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from tornado import web

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Fault:
    kind: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class AgsState:
    tool_jwk: dict
    client_id: str
    base_url: str = ""
    token_lifetime: int = 3600
    clock: Any = time.time
    faults: list[Fault] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires_at
    token_requests: list[dict] = field(default_factory=list)  # decoded assertion claims + header
    seen_jti: set[str] = field(default_factory=set)
    lineitems: dict[str, dict[int, dict]] = field(default_factory=dict)  # context -> n -> item
    results: dict[tuple[str, int, str], dict] = field(default_factory=dict)  # (ctx, n, userId) -> score
    score_posts: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    members: dict[str, list[dict]] = field(default_factory=dict)  # context -> members
    page_size: int = 2
    loop_pages: bool = False  # the last page links back to the first
    lineitem_page_size: int = 100
    hold_creates: asyncio.Event | None = None
    lineitem_puts: list[dict] = field(default_factory=list)
    after_page: Any = None  # callable(ctx, page) after each NRPS page

    def items_for(self, context: str, resource_id: str) -> list[dict]:
        return [i for i in self.lineitems.get(context, {}).values() if i.get("resourceId") == resource_id]

    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def lineitems_url(self, context: str) -> str:
        return f"{self.base_url}/ctx/{context}/lineitems"

    def memberships_url(self, context: str) -> str:
        return f"{self.base_url}/ctx/{context}/memberships"

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def fault(self, kind: str) -> Fault | None:
        for f in self.faults:
            if f.kind == kind and f.times > 0:
                f.times -= 1
                return f
        return None


class _Base(web.RequestHandler):
    kind = ""

    def initialize(self, state: AgsState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        pass

    def prepare(self) -> None:
        self.state.requests.append((self.request.method, self.request.path))
        f = self.state.fault(self.kind)
        if f is not None:
            self.set_status(f.status)
            for k, v in f.headers.items():
                self.set_header(k, v)
            self.finish({"error": f"injected {f.status}"})

    def bearer(self, scope: str) -> None:
        auth = self.request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        expires = self.state.tokens.get(token)
        if expires is None or self.state.clock() >= expires:
            self.set_status(401)
            self.finish({"error": "invalid_token"})
            raise web.Finish()

    def json_body(self) -> Any:
        return json.loads(self.request.body or b"null")


class TokenHandler(_Base):
    kind = "token"

    def post(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            raise web.HTTPError(400, "unsupported grant")
        assertion = form.get("client_assertion", "")
        header = jwt.get_unverified_header(assertion)
        if header.get("kid") != self.state.tool_jwk.get("kid"):
            raise web.HTTPError(400, "unknown kid")
        key = jwt.PyJWK(self.state.tool_jwk).key
        try:
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=self.state.token_url(),
                                issuer=self.state.client_id,
                                options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
            now = self.state.clock()
            if not claims["iat"] - 60 <= now < claims["exp"]:
                raise jwt.ExpiredSignatureError("assertion expired or issued in the future")
        except jwt.PyJWTError as e:
            self.set_status(400)
            self.finish({"error": "invalid_client", "error_description": str(e)})
            return
        if claims["sub"] != self.state.client_id or claims["jti"] in self.state.seen_jti:
            self.set_status(400)
            self.finish({"error": "invalid_client", "error_description": "replayed or wrong subject"})
            return
        if claims["exp"] - claims["iat"] > 3600:
            raise web.HTTPError(400, "assertion lives too long")
        self.state.seen_jti.add(claims["jti"])
        self.state.token_requests.append({"header": header, "claims": claims, "scope": form.get("scope", "")})
        token = secrets.token_urlsafe(16)
        self.state.tokens[token] = self.state.clock() + self.state.token_lifetime
        self.finish({"access_token": token, "token_type": "Bearer", "expires_in": self.state.token_lifetime,
                     "scope": form.get("scope", "")})


class LineItemsHandler(_Base):
    kind = "lineitems"

    def get(self, ctx: str) -> None:
        self.bearer("lineitem")
        items = list(self.state.lineitems.get(ctx, {}).values())
        rid, tag = self.get_query_argument("resource_id", None), self.get_query_argument("tag", None)
        items = [i for i in items if (rid is None or i.get("resourceId") == rid) and (tag is None or i.get("tag") == tag)]
        page = int(self.get_query_argument("page", "0"))
        size = self.state.lineitem_page_size
        chunk = items[page * size:(page + 1) * size]
        if (page + 1) * size < len(items):
            q = {k: v[0] for k, v in self.request.query_arguments.items()}
            q = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in q.items()}
            q["page"] = str(page + 1)
            self.set_header("Link", f'<{self.state.lineitems_url(ctx)}?{urlencode(q)}>; rel="next"')
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitemcontainer+json")
        self.finish(json.dumps(chunk))

    async def post(self, ctx: str) -> None:
        self.bearer("lineitem")
        body = self.json_body()
        if not isinstance(body.get("scoreMaximum"), (int, float)) or body["scoreMaximum"] <= 0 or not body.get("label"):
            raise web.HTTPError(400, "line item needs a label and scoreMaximum > 0")
        if self.state.hold_creates is not None:
            await self.state.hold_creates.wait()
        items = self.state.lineitems.setdefault(ctx, {})
        n = max(items, default=0) + 1
        item = {**body, "id": f"{self.state.lineitems_url(ctx)}/{n}"}
        items[n] = item
        self.set_status(201)
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")
        self.finish(json.dumps(item))


class LineItemHandler(_Base):
    kind = "lineitems"

    def get(self, ctx: str, n: str) -> None:
        self.bearer("lineitem")
        item = self.state.lineitems.get(ctx, {}).get(int(n))
        if item is None:
            raise web.HTTPError(404, "no such line item")
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")
        self.finish(json.dumps(item))

    def put(self, ctx: str, n: str) -> None:
        self.bearer("lineitem")
        items = self.state.lineitems.get(ctx, {})
        if int(n) not in items:
            raise web.HTTPError(404, "no such line item")
        body = self.json_body()
        if not isinstance(body.get("scoreMaximum"), (int, float)) or body["scoreMaximum"] <= 0 or not body.get("label"):
            raise web.HTTPError(400, "line item needs a label and scoreMaximum > 0")
        self.state.lineitem_puts.append({"ctx": ctx, "lineitem": int(n), **body})
        items[int(n)] = {**items[int(n)], **body, "id": items[int(n)]["id"]}
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")
        self.finish(json.dumps(items[int(n)]))


class ScoresHandler(_Base):
    kind = "scores"

    def post(self, ctx: str, n: str) -> None:
        self.bearer("score")
        if self.request.headers.get("Content-Type", "").split(";")[0] != SCORE_TYPE:
            raise web.HTTPError(415, "scores must be application/vnd.ims.lis.v1.score+json")
        if int(n) not in self.state.lineitems.get(ctx, {}):
            raise web.HTTPError(404, "no such line item")
        score = self.json_body()
        for k in ("userId", "activityProgress", "gradingProgress", "timestamp"):
            if k not in score:
                raise web.HTTPError(400, f"missing {k}")
        self.state.score_posts.append({"ctx": ctx, "lineitem": int(n), **score})
        key = (ctx, int(n), score["userId"])
        current = self.state.results.get(key)
        # AGS: a platform must not update a result whose last timestamp is later than the new one.
        if current is None or _ts(score["timestamp"]) >= _ts(current["timestamp"]):
            self.state.results[key] = score
        self.set_status(200)
        self.finish({})


def _ts(value: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class MembershipsHandler(_Base):
    kind = "memberships"

    def get(self, ctx: str) -> None:
        self.bearer("nrps")
        members = self.state.members.get(ctx, [])
        page = int(self.get_query_argument("page", "0"))
        size = self.state.page_size
        chunk = members[page * size:(page + 1) * size]
        base = self.state.memberships_url(ctx)
        if (page + 1) * size < len(members):
            self.set_header("Link", f'<{base}?page={page + 1}>; rel="next"')
        elif self.state.loop_pages:
            self.set_header("Link", f'<{base}>; rel="next"')
        self.set_header("Content-Type", "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
        self.finish(json.dumps({"id": base, "context": {"id": ctx}, "members": chunk}))
        if self.state.after_page is not None:
            self.state.after_page(ctx, page)


def ags_handlers(state: AgsState, prefix: str = "") -> list[tuple]:
    kw = {"state": state}
    return [
        (rf"{prefix}/token", TokenHandler, kw),
        (rf"{prefix}/ctx/([^/]+)/lineitems", LineItemsHandler, kw),
        (rf"{prefix}/ctx/([^/]+)/lineitems/([0-9]+)", LineItemHandler, kw),
        (rf"{prefix}/ctx/([^/]+)/lineitems/([0-9]+)/scores", ScoresHandler, kw),
        (rf"{prefix}/ctx/([^/]+)/memberships", MembershipsHandler, kw),
    ]
