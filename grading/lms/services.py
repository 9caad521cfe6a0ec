"""Authenticated calls to a platform's AGS and NRPS endpoints.

Every URL is checked against the platform registration before a request is made (`guard`), and a
401 gets one retry with a fresh token (a token that expired or was revoked mid-batch).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from .guard import check_service_url
from .httpclient import Http, Response
from .records import AGS_LINEITEM, AGS_SCORE, NRPS_MEMBERSHIP, LaunchServices
from .retry import RETRYABLE, RetryGate, retry_after_seconds
from .tokens import TokenClient, TokenError

log = logging.getLogger("coursehub.grading.lms")

LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


#: One token covers every AGS call of a batch (line items and scores).
AGS_SCOPES = (AGS_LINEITEM, AGS_SCORE)


class LmsServiceError(RuntimeError):
    """An LMS service call (AGS, NRPS, token) that did not succeed; `retryable` says whether trying
    later may help. Not the grading service's own `service.errors.ServiceError`."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE


class Deferred(LmsServiceError):
    """Not sent: the platform's Retry-After has not passed yet (no request was made)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, 429, retry_after)


_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^,;]+)*)')


def next_link(values: Iterable[str], base: str) -> str | None:
    """The rel="next" target of RFC 8288 Link header values, resolved against `base`."""
    for value in values:
        for target, params in _LINK.findall(value):
            rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
            if any("next" in r.split() for r in rels):
                return urljoin(base, target.strip())
    return None


def scores_url(lineitem_url: str) -> str:
    """`<lineitem>/scores`, keeping the line item URL's query string (AGS 2.0, section 3.4)."""
    p = urlsplit(lineitem_url)
    return urlunsplit((p.scheme, p.netloc, p.path.rstrip("/") + "/scores", p.query, ""))


def _excerpt(resp: Response) -> str:
    text = resp.body[:200].decode("utf-8", "replace").replace("\n", " ")
    return f"HTTP {resp.status} {resp.error} {text}".strip()


@dataclass
class Page:
    members: list[dict] = field(default_factory=list)
    complete: bool = True
    pages: int = 0
    problem: str = ""


class ServiceClient:
    """AGS and NRPS calls. A platform's Retry-After (429/503, also from its token endpoint) holds
    every later call to that platform through this client until it has passed (`Deferred`)."""

    def __init__(self, tokens: TokenClient, http: Http | None = None, gate: RetryGate | None = None):
        self.tokens = tokens
        self.http = http or tokens.http
        self.gate = gate or RetryGate()

    @staticmethod
    def _gate_key(svc: LaunchServices) -> str:
        return f"{svc.platform.issuer} {svc.platform.token_url}"

    def _hold(self, svc: LaunchServices, retry_after: float | None) -> None:
        if retry_after is not None and retry_after > 0:
            self.gate.hold(self._gate_key(svc), self.tokens.clock() + retry_after)

    async def call(self, svc: LaunchServices, method: str, url: str, scopes: tuple[str, ...], *,
                   accept: str, content_type: str | None = None, body: bytes | None = None) -> Response:
        check_service_url(url, svc.platform)
        wait = self.gate.remaining(self._gate_key(svc), self.tokens.clock())
        if wait > 0:
            raise Deferred(f"the LMS asked us to wait (Retry-After): {wait:.0f} s to go", wait)
        granted = tuple(s for s in scopes if not svc.ags_scopes or s in svc.ags_scopes or s == NRPS_MEMBERSHIP)
        scopes = granted or scopes
        for attempt in (1, 2):
            try:
                token = await self.tokens.token(svc.platform.token_url, svc.client_id, scopes)
            except TokenError as e:
                self._hold(svc, e.retry_after)
                raise LmsServiceError(str(e), e.status, e.retry_after) from None
            headers = {"Authorization": f"Bearer {token}", "Accept": accept}
            if content_type:
                headers["Content-Type"] = content_type
            resp = await self.http.request(method, url, headers=headers, body=body)
            if resp.status in (429, 503):
                self._hold(svc, retry_after_seconds(resp.header("Retry-After"), self.tokens.clock()))
            if resp.status == 401 and attempt == 1:
                self.tokens.invalidate(svc.platform.token_url, svc.client_id, scopes)
                log.info("token refused by %s (expired or revoked): fetching a new one", urlsplit(url).netloc)
                continue
            return resp
        return resp

    def _raise(self, what: str, resp: Response) -> None:
        raise LmsServiceError(f"{what}: {_excerpt(resp)}", resp.status,
                           retry_after_seconds(resp.header("Retry-After"), self.tokens.clock()))

    # --- AGS line items -------------------------------------------------------------------------
    async def find_lineitem(self, svc: LaunchServices, resource_id: str, tag: str | None = None,
                            page_cap: int = 50) -> dict | None:
        if not svc.lineitems_url:
            raise LmsServiceError("this launch has no AGS line items URL (the LMS did not grant grade passback)")
        query = {"resource_id": resource_id, **({"tag": tag} if tag else {})}
        sep = "&" if urlsplit(svc.lineitems_url).query else "?"
        url: str | None = svc.lineitems_url + sep + urlencode(query)
        seen: set[str] = set()
        while url and url not in seen and len(seen) < page_cap:
            seen.add(url)
            resp = await self.call(svc, "GET", url, AGS_SCOPES, accept=LINEITEMS_TYPE)
            if resp.status != 200:
                self._raise("listing line items", resp)
            for item in json.loads(resp.body or b"[]"):
                if item.get("resourceId") == resource_id and (tag is None or item.get("tag") == tag):
                    return item
            url = next_link(resp.header_all("Link"), url)
        return None

    async def create_lineitem(self, svc: LaunchServices, *, label: str, score_maximum: float,
                              resource_id: str, tag: str | None = None) -> dict:
        body = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id}
        if tag:
            body["tag"] = tag
        resp = await self.call(svc, "POST", svc.lineitems_url or "", AGS_SCOPES, accept=LINEITEM_TYPE,
                               content_type=LINEITEM_TYPE, body=json.dumps(body).encode())
        if resp.status not in (200, 201):
            self._raise("creating a line item", resp)
        item = json.loads(resp.body)
        check_service_url(str(item.get("id", "")), svc.platform)
        return item

    async def update_lineitem(self, svc: LaunchServices, lineitem_url: str, *, label: str, score_maximum: float,
                              resource_id: str, tag: str | None = None) -> dict:
        """PUT the line item with a new label or maximum (AGS 2.0, section 3.2.8): its grades stay."""
        check_service_url(lineitem_url, svc.platform)
        body = {"id": lineitem_url, "label": label, "scoreMaximum": score_maximum, "resourceId": resource_id}
        if tag:
            body["tag"] = tag
        resp = await self.call(svc, "PUT", lineitem_url, AGS_SCOPES, accept=LINEITEM_TYPE,
                               content_type=LINEITEM_TYPE, body=json.dumps(body).encode())
        if resp.status not in (200, 201, 204):
            self._raise("updating a line item", resp)
        return json.loads(resp.body) if resp.body else body

    async def ensure_lineitem(self, svc: LaunchServices, *, label: str, score_maximum: float,
                              resource_id: str, tag: str | None = "coursehub") -> str:
        item = await self.find_lineitem(svc, resource_id, tag)
        if item is None:
            item = await self.create_lineitem(svc, label=label, score_maximum=score_maximum,
                                              resource_id=resource_id, tag=tag)
        return check_service_url(str(item["id"]), svc.platform)

    async def post_score(self, svc: LaunchServices, lineitem_url: str, score: dict) -> Response:
        resp = await self.call(svc, "POST", scores_url(lineitem_url), AGS_SCOPES,
                               accept="application/json", content_type=SCORE_TYPE, body=json.dumps(score).encode())
        if resp.status not in (200, 201, 202, 204):
            self._raise("sending a score", resp)
        return resp

    # --- NRPS -----------------------------------------------------------------------------------
    async def members(self, svc: LaunchServices, page_cap: int = 200) -> Page:
        """All members over every `Link: rel="next"` page; a loop or the page cap stops the walk
        and marks the result incomplete (then nobody may be marked as having left)."""
        if not svc.nrps_url:
            raise LmsServiceError("this launch has no NRPS memberships URL (the LMS did not grant roster access)")
        out = Page()
        url: str | None = svc.nrps_url
        seen: set[str] = set()
        while url:
            if url in seen:
                out.complete, out.problem = False, f"the LMS's page links loop back to a page already read ({len(seen)} pages)"
                break
            if len(seen) >= page_cap:
                out.complete, out.problem = False, f"stopped after {page_cap} pages"
                break
            seen.add(url)
            resp = await self.call(svc, "GET", url, (NRPS_MEMBERSHIP,), accept=MEMBERSHIP_TYPE)
            if resp.status != 200:
                self._raise("reading the roster", resp)
            data = json.loads(resp.body)
            out.members.extend(m for m in data.get("members", []) if isinstance(m, dict))
            out.pages += 1
            url = next_link(resp.header_all("Link"), url)
        if out.problem:
            log.warning("roster of %s incomplete: %s", svc.course_id, out.problem)
        return out
