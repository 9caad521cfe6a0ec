"""The local LMS's side of a launch: its key and the id_tokens it signs (its registration is
`lti/local_registration.py`)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import jwt

from ..courses import Course, LtiContext
from ..lti import claims as C
from ..lti.keys import KeyPair, load_or_create_key_pair, local_lms_key_path
from ..lti.local_registration import CLIENT_ID
from .services import LocalServices

ROLE_URIS = {
    "student": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    "ta": ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
    "instructor": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
}
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class PendingLaunch:
    person: str
    role: str
    course: Course
    context: LtiContext
    kind: str
    item: str
    expires: float


class LocalLms:
    """Pending launches (by login_hint, single use, 10 minutes) and the signing of id_tokens."""

    def __init__(self, state_dir: Path, issuer: str, services: LocalServices | None = None):
        self.key: KeyPair = load_or_create_key_pair(local_lms_key_path(state_dir))
        self.issuer = issuer
        self.services = services
        self._pending: dict[str, PendingLaunch] = {}

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.issuer}/ags/{quote(context_id, safe='')}/lineitems"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.issuer}/nrps/{quote(context_id, safe='')}/memberships"

    def start(self, *, person: str, role: str, course: Course, context: LtiContext, kind: str,
              item: str) -> tuple[str, PendingLaunch]:
        now = time.time()
        self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
        hint = secrets.token_urlsafe(16)
        launch = self._pending[hint] = PendingLaunch(person, role, course, context, kind, item, now + 600)
        return hint, launch

    def login_initiation_url(self, hub_base: str, hint: str, launch: PendingLaunch, target_link_uri: str) -> str:
        query = urlencode({
            "iss": self.issuer, "login_hint": hint, "target_link_uri": target_link_uri,
            "client_id": CLIENT_ID, "lti_deployment_id": launch.context.deployment_id,
        })
        return f"{hub_base.rstrip('/')}/lti13/oauth_login?{query}"

    def take(self, hint: str) -> PendingLaunch | None:
        launch = self._pending.pop(hint, None)
        return launch if launch and launch.expires > time.time() else None

    def id_token(self, launch: PendingLaunch, *, nonce: str, target_link_uri: str) -> str:
        now = int(time.time())
        slug = _SLUG.sub("-", launch.person.lower()).strip("-") or "person"
        custom = {launch.kind: launch.item} if launch.kind in ("assignment", "textbook") else {}
        claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "sub": f"local-{slug}", "iat": now, "exp": now + 300,
            "nonce": nonce, "name": launch.person, "email": f"{slug}@local.invalid",
            C.MESSAGE_TYPE: C.RESOURCE_LINK_REQUEST, C.VERSION: "1.3.0",
            C.DEPLOYMENT_ID: launch.context.deployment_id, C.TARGET_LINK_URI: target_link_uri,
            C.RESOURCE_LINK: {"id": f"{launch.course.id}-{launch.kind}-{launch.item or 'home'}",
                              "title": launch.item or launch.course.title},
            C.ROLES: ROLE_URIS[launch.role],
            C.CONTEXT: {"id": launch.context.context_id, "label": launch.course.id, "title": launch.course.title},
            C.CUSTOM: custom,
            C.LAUNCH_PRESENTATION: {"document_target": "window"},
            C.TOOL_PLATFORM: {"name": "coursehub local LMS", "guid": "coursehub-local-lms"},
        }
        if self.services is not None:  # grades back (AGS) and the roster (NRPS), as a real LMS offers them
            ctx = launch.context.context_id
            claims[C.AGS_ENDPOINT] = {"scope": list(C.AGS_SCOPES), "lineitems": self.lineitems_url(ctx)}
            claims[C.NRPS] = {"context_memberships_url": self.memberships_url(ctx), "service_versions": ["2.0"]}
            self.services.record_member(ctx, launch.course.title, user_id=claims["sub"], name=launch.person,
                                        email=claims["email"], roles=ROLE_URIS[launch.role])
        return jwt.encode(claims, self.key.private_pem, algorithm="RS256", headers={"kid": self.key.kid})
