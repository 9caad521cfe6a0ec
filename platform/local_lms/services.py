"""The local LMS's LTI Advantage services: an OAuth2 token endpoint (client credentials with the
tool's signed JWT assertion), AGS line items and scores, and an NRPS roster of the people who
launched from the local LMS page. What it stores (line items, scores, roster) is kept in one JSON
file in the state folder, so the local gradebook survives a restart; tokens live in memory.

It follows what a real LMS checks (1EdTech Security Framework, AGS 2.0, NRPS 2.0) closely enough
that coursehub's own grade sync and roster sync run against it unchanged; it is for trying
coursehub on one machine, never a gradebook for a class.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from ..lti import claims as C

TOKEN_LIFETIME = 3600
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
LINEITEM_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
GRANTABLE = frozenset((*C.AGS_SCOPES, C.NRPS_SCOPE))
#: Limits: a local page, but a bad client must not fill the disk.
MAX_ITEMS_PER_CONTEXT = 500
MAX_LABEL = 255
MAX_COMMENT = 2000


class ServiceRefused(Exception):
    """An OAuth or service error: HTTP status, OAuth error code (or ""), and a readable reason."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def services_path(state_dir: Path) -> Path:
    return Path(state_dir) / "lti" / "local-lms-services.json"


class LocalServices:
    """Tokens, line items, scores and rosters of the local LMS (one hub process)."""

    def __init__(self, path: Path, client_id: str, token_url: str, tool_jwk: Callable[[], dict],
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.client_id = client_id
        self.token_url = token_url
        self.tool_jwk = tool_jwk
        self.clock = clock
        self._tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self._jti: dict[str, float] = {}
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"contexts": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    # --- storage ----------------------------------------------------------------------------
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def context(self, context_id: str) -> dict:
        return self.data["contexts"].setdefault(context_id, {"title": "", "members": {}, "lineitems": {}})

    # --- roster -----------------------------------------------------------------------------
    def record_member(self, context_id: str, title: str, *, user_id: str, name: str, email: str,
                      roles: list[str]) -> None:
        """Everyone who launched from the local LMS page is a member of that course's context."""
        with self._lock:
            ctx = self.context(context_id)
            ctx["title"] = title
            ctx["members"][user_id] = {"user_id": user_id, "name": name, "email": email, "roles": list(roles),
                                       "status": "Active"}
            self._save()

    def members(self, context_id: str) -> list[dict]:
        ctx = self.data["contexts"].get(context_id)
        return sorted(ctx["members"].values(), key=lambda m: m["user_id"]) if ctx else []

    # --- OAuth2 client credentials -------------------------------------------------------------
    def issue_token(self, form: dict[str, str]) -> dict:
        """The token response for a client-credentials request with a JWT client assertion."""
        if form.get("grant_type") != "client_credentials":
            raise ServiceRefused(400, "unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise ServiceRefused(400, "invalid_client", "a JWT client assertion is required")
        assertion = form.get("client_assertion", "")
        jwk = self.tool_jwk()
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("kid") != jwk.get("kid"):
                raise ServiceRefused(400, "invalid_client", "the assertion is not signed with the tool's key")
            claims = jwt.decode(assertion, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=self.token_url,
                                issuer=self.client_id, leeway=60,
                                options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"]})
        except jwt.PyJWTError as e:
            raise ServiceRefused(400, "invalid_client", f"client assertion refused: {e}") from None
        now = self.clock()
        if claims["sub"] != self.client_id:
            raise ServiceRefused(400, "invalid_client", "the assertion's subject is not the tool")
        if claims["exp"] - claims["iat"] > 3600:
            raise ServiceRefused(400, "invalid_client", "the assertion lives too long")
        with self._lock:
            self._jti = {k: v for k, v in self._jti.items() if v > now}
            if claims["jti"] in self._jti:
                raise ServiceRefused(400, "invalid_client", "the assertion was already used")
            self._jti[str(claims["jti"])] = float(claims["exp"]) + 60
            wanted = set(form.get("scope", "").split())
            scopes = frozenset(wanted & GRANTABLE)
            if not scopes:
                raise ServiceRefused(400, "invalid_scope", "none of the requested scopes is offered")
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (now + TOKEN_LIFETIME, scopes)
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                "scope": " ".join(sorted(scopes))}

    def check_bearer(self, authorization: str, *any_of: str) -> None:
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        granted = self._tokens.get(token)
        if granted is None or granted[0] <= self.clock():
            raise ServiceRefused(401, "invalid_token", "a valid access token is required")
        if not granted[1] & set(any_of):
            raise ServiceRefused(403, "insufficient_scope", "the token does not grant this service")

    # --- AGS line items and scores --------------------------------------------------------------
    def lineitems(self, context_id: str, resource_id: str | None = None, tag: str | None = None) -> list[dict]:
        ctx = self.data["contexts"].get(context_id)
        items = [i["item"] for i in ctx["lineitems"].values()] if ctx else []
        return [i for i in items if (resource_id is None or i.get("resourceId") == resource_id)
                and (tag is None or i.get("tag") == tag)]

    def lineitem(self, context_id: str, n: str) -> dict:
        ctx = self.data["contexts"].get(context_id)
        entry = ctx["lineitems"].get(n) if ctx else None
        if entry is None:
            raise ServiceRefused(404, "", "no such line item")
        return entry

    @staticmethod
    def _valid_item(body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("label"), str) or not body["label"].strip():
            raise ServiceRefused(400, "", "a line item needs a label")
        top = body.get("scoreMaximum")
        if isinstance(top, bool) or not isinstance(top, (int, float)) or not 0 < top < 1e9:
            raise ServiceRefused(400, "", "a line item needs a scoreMaximum above 0")
        keep = {"label": body["label"][:MAX_LABEL], "scoreMaximum": float(top)}
        for key in ("resourceId", "tag", "resourceLinkId"):
            if isinstance(body.get(key), str):
                keep[key] = body[key][:MAX_LABEL]
        return keep

    def create_lineitem(self, context_id: str, base_url: str, body: Any) -> dict:
        """`base_url`: this context's line items URL (the new item's id is below it)."""
        item = self._valid_item(body)
        with self._lock:
            ctx = self.context(context_id)
            if len(ctx["lineitems"]) >= MAX_ITEMS_PER_CONTEXT:
                raise ServiceRefused(400, "", "too many line items in this course")
            n = str(max((int(k) for k in ctx["lineitems"]), default=0) + 1)
            item["id"] = f"{base_url}/{n}"
            ctx["lineitems"][n] = {"item": item, "scores": {}}
            self._save()
        return item

    def update_lineitem(self, context_id: str, n: str, body: Any) -> dict:
        item = self._valid_item(body)
        with self._lock:
            entry = self.lineitem(context_id, n)
            entry["item"] = {**entry["item"], **item, "id": entry["item"]["id"]}
            self._save()
            return entry["item"]

    def post_score(self, context_id: str, n: str, body: Any) -> None:
        """AGS 2.0 score publish: a result older than the stored one changes nothing."""
        if not isinstance(body, dict):
            raise ServiceRefused(400, "", "a score is a JSON object")
        for key in ("userId", "activityProgress", "gradingProgress", "timestamp"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ServiceRefused(400, "", f"a score needs {key}")
        try:
            stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            raise ServiceRefused(400, "", "timestamp is not an ISO 8601 time") from None
        given, top = body.get("scoreGiven"), body.get("scoreMaximum")
        if given is not None and (isinstance(given, bool) or not isinstance(given, (int, float))
                                  or not isinstance(top, (int, float)) or top <= 0):
            raise ServiceRefused(400, "", "scoreGiven needs a numeric scoreMaximum above 0")
        score = {"userId": body["userId"][:255], "scoreGiven": given, "scoreMaximum": top,
                 "activityProgress": body["activityProgress"][:32], "gradingProgress": body["gradingProgress"][:32],
                 "comment": str(body.get("comment") or "")[:MAX_COMMENT], "timestamp": stamp.isoformat()}
        with self._lock:
            entry = self.lineitem(context_id, n)
            current = entry["scores"].get(score["userId"])
            if current is None or dt.datetime.fromisoformat(current["timestamp"]) <= stamp:
                entry["scores"][score["userId"]] = score
                self._save()

    # --- the gradebook view ---------------------------------------------------------------------
    def gradebook(self, context_id: str) -> dict:
        """Line items and each member's received score, for the local LMS's gradebook page."""
        ctx = self.data["contexts"].get(context_id) or {"members": {}, "lineitems": {}}
        items = [ctx["lineitems"][k] for k in sorted(ctx["lineitems"], key=int)]
        people = dict(ctx["members"])
        for entry in items:  # scores for people who never launched here still show
            for uid in entry["scores"]:
                people.setdefault(uid, {"user_id": uid, "name": uid, "roles": []})
        rows = [{"member": m, "scores": [e["scores"].get(uid) for e in items]}
                for uid, m in sorted(people.items(), key=lambda p: (p[1].get("name") or p[0]).casefold())]
        return {"items": [e["item"] for e in items], "rows": rows}
