"""The registered test LMS a load test launches through: it signs LTI 1.3 id_tokens with the
platform's own key, as the local LMS page does, so the hub validates every launch for real."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jwt

from coursehub.platform.lti import claims as C

ROLE_URIS = {
    "student": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    "instructor": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
}


@dataclass(frozen=True)
class TestPlatform:
    """What the hub registered for the test LMS, plus the private key it signs with."""

    __test__ = False  # not a pytest class

    issuer: str
    client_id: str
    deployment_id: str
    context_id: str
    course_id: str
    key_pem: bytes
    kid: str

    def id_token(self, *, sub: str, name: str, role: str, nonce: str, target_link_uri: str,
                 assignment: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 300,
            "nonce": nonce, "name": name, "email": f"{sub}@loadtest.invalid",
            C.MESSAGE_TYPE: C.RESOURCE_LINK_REQUEST, C.VERSION: "1.3.0",
            C.DEPLOYMENT_ID: self.deployment_id, C.TARGET_LINK_URI: target_link_uri,
            C.RESOURCE_LINK: {"id": f"loadtest-{self.course_id}-{assignment or 'home'}", "title": "load test"},
            C.ROLES: ROLE_URIS[role],
            C.CONTEXT: {"id": self.context_id, "label": self.course_id, "title": self.course_id},
            C.CUSTOM: {"assignment": assignment} if assignment else {},
            C.TOOL_PLATFORM: {"name": "coursehub loadtest", "guid": "coursehub-loadtest"},
        }
        return jwt.encode(claims, self.key_pem, algorithm="RS256", headers={"kid": self.kid})


def key_and_kid(path: Path, kid: str | None = None) -> tuple[bytes, str]:
    """The PEM private key in `path` and its `kid` (default: its RFC 7638 thumbprint, as coursehub's
    own JWKS names keys)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from coursehub.platform.lti.keys import thumbprint

    pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return pem, kid or thumbprint(key)


class LocalPlatform(NamedTuple):
    url: str  # the hub's public URL (through the proxy)
    platform: TestPlatform
    course: Any  # coursehub.platform.courses.Course
    service_url: str  # the grading service's own URL, as the user servers reach it (not through the proxy)


def local_platform(settings_path: Path | None, state_dir: Path | None, course_id: str | None) -> LocalPlatform:
    """The local platform (`coursehub up`): its URL, the `local-lms` registration with its key, the
    course and the grading service's direct URL. Raises ValueError with what to do when it cannot be found."""
    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.lti.keys import load_or_create_key_pair, local_lms_key_path
    from coursehub.platform.lti.local_registration import CLIENT_ID, local_contexts, registration
    from coursehub.platform.settings import load_settings

    if settings_path is None and state_dir is not None:
        settings_path = state_dir / "settings.effective.yaml"  # written by `coursehub up`
        if not settings_path.is_file():
            raise ValueError(f"no local platform in {state_dir}/ (start one with `coursehub up`, or give "
                             "--state-dir, --settings or --target)")
    try:
        settings = load_settings(settings_path, **({"state_dir": state_dir} if state_dir else {}))
        catalog = load_catalog(settings.courses_dir)
    except ConfigError as e:
        raise ValueError("; ".join(str(p) for p in e.problems)) from None
    if not settings.local or not settings.auth.lti.local_lms:
        raise ValueError("the local platform's settings have no local LMS (auth.lti.local_lms); "
                         "give --target with the test platform's flags instead")
    linked = [(c, local_contexts(c)) for c in catalog if local_contexts(c)]
    chosen = [(c, ctx) for c, ctx in linked if course_id in (None, c.id)]
    if not chosen:
        raise ValueError(f"no course {'named ' + course_id + ' ' if course_id else ''}is linked to the local LMS "
                         f"(courses: {', '.join(c.id for c, _ in linked) or 'none'})")
    course, contexts = chosen[0]
    # The hub creates this key on first use of the LMS page; creating it first is the same (atomic).
    pair = load_or_create_key_pair(local_lms_key_path(settings.state_dir))
    pem, kid = pair.private_pem, pair.kid
    reg = registration(settings)
    platform = TestPlatform(issuer=reg.issuer, client_id=CLIENT_ID, deployment_id=contexts[0].deployment_id,
                            context_id=contexts[0].context_id, course_id=course.id, key_pem=pem, kid=kid)
    from coursehub.grading.service.hub import service_url

    return LocalPlatform(settings.public_url(), platform, course, service_url(settings))
