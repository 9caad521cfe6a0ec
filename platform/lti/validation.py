"""Complete validation of an LTI 1.3 id_token, for one registered platform.

Upstream's `LTI13LaunchValidator` checks the claims' shape (version, message type, required
claims, resource link id, context label); it is reused for that. Everything it leaves out is
here: the algorithm allow-list (asymmetric only, per registration), keys from the shared JWKS
cache, iat not in the future, aud/azp against this registration's client ids, the registered
deployment, and the single-use nonce bound to the browser that started the login.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from ltiauthenticator.lti13.error import IncorrectValueError, ValidationError
from ltiauthenticator.lti13.validator import LTI13LaunchValidator

from . import claims as C
from .claim_schema import check_claims
from .jwks import JwksError, UnknownKeyError
from .refusal import LaunchRefused
from .registry import LaunchRegistration, Registry

#: Messages coursehub accepts: launches of links, and content selection (deep linking) by staff.
MESSAGE_TYPES = (C.RESOURCE_LINK_REQUEST, C.DEEP_LINKING_REQUEST)
REQUIRED = ("iss", "aud", "sub", "exp", "iat", "nonce")
#: An id_token larger than this is not looked at (real ones are a few kilobytes).
MAX_TOKEN_CHARS = 8 * 2**20


@dataclass(frozen=True)
class ValidLaunch:
    """A verified launch: the registration it came through and its claims."""

    registration: LaunchRegistration
    client_id: str
    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        return self.claims["iss"]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def deployment_id(self) -> str:
        return self.claims[C.DEPLOYMENT_ID]

    @property
    def context(self) -> dict:
        return self.claims.get(C.CONTEXT) or {}

    @property
    def roles(self) -> list[str]:
        return list(self.claims.get(C.ROLES) or [])

    @property
    def custom(self) -> dict:
        custom = self.claims.get(C.CUSTOM)
        return custom if isinstance(custom, dict) else {}

    @property
    def resource_link(self) -> dict:
        return self.claims.get(C.RESOURCE_LINK) or {}

    @property
    def target_link_uri(self) -> str:
        return self.claims.get(C.TARGET_LINK_URI) or ""

    @property
    def message_type(self) -> str:
        return self.claims[C.MESSAGE_TYPE]

    @property
    def deep_linking_settings(self) -> dict:
        return self.claims.get(C.DEEP_LINKING_SETTINGS) or {}


def _refuse(reason: str, message: str, status: int = 400, detail: str = "",
            page: str = "lti_refused.html") -> LaunchRefused:
    return LaunchRefused(reason, message, status, detail=detail, page=page)


_JWT_REASONS: list[tuple[type, str, str]] = [
    (jwt.InvalidSignatureError, "bad_signature", "The launch's signature does not verify."),
    (jwt.ExpiredSignatureError, "expired", "The launch has expired."),
    (jwt.ImmatureSignatureError, "issued_in_future", "The launch claims to be issued in the future."),
    (jwt.MissingRequiredClaimError, "missing_claim", "The launch lacks a required claim."),
    (jwt.InvalidAudienceError, "wrong_audience", "The launch was meant for another tool."),
    (jwt.InvalidIssuerError, "wrong_issuer", "The launch comes from another platform than it says."),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed", "The launch is signed with a refused algorithm."),
]


class LaunchValidator:
    """Validates id_tokens of the registered platforms (one instance per hub)."""

    def __init__(self, registry: Registry, *, leeway: int = 60, max_age: int = 600,
                 consume_nonce: Callable[[str], bool], clock: Callable[[], float] = time.time,
                 extra_strings: tuple[str, ...] = ()):
        self.registry = registry
        #: Further claims that are stored when present (the account-linking claim): short strings.
        self.extra_strings = extra_strings
        self.leeway = leeway
        self.max_age = max_age
        self.consume_nonce = consume_nonce
        self.clock = clock
        self._shape = LTI13LaunchValidator(time_leeway=leeway, max_age=max_age)

    async def validate(self, id_token: str, registration: LaunchRegistration, expected_nonce: str | None) -> ValidLaunch:
        """Verify `id_token` as a launch through `registration` (chosen at login initiation).

        `expected_nonce` is the nonce derived from this browser's launch cookie; None if the
        cookie was missing (refused before getting here).
        """
        if len(id_token) > MAX_TOKEN_CHARS:
            raise _refuse("launch_too_large", "The launch message is larger than this tool accepts.", status=413)
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise _refuse("malformed_token", "The launch message is not a valid token.") from None
        alg = header.get("alg")
        if alg not in registration.algorithms:
            raise _refuse("algorithm_not_allowed", "The launch is signed with an algorithm this platform's "
                          "registration does not allow.", detail=f"alg={alg!r}")
        try:
            key = await self.registry.jwks(registration).get_key(header.get("kid"))
        except UnknownKeyError:
            raise _refuse("unknown_key", "The launch is signed with a key the platform does not publish.",
                          detail=f"kid={header.get('kid')!r}") from None
        except JwksError as e:
            raise _refuse("jwks_unavailable", "The LMS's signing keys could not be fetched; try again in a "
                          "minute.", status=502, detail=str(e)) from None
        try:
            claims = jwt.decode(
                id_token, key.key, algorithms=[alg], issuer=registration.issuer,
                audience=list(registration.client_ids), leeway=self.leeway,
                options={"require": list(REQUIRED), "verify_iat": True},
            )
        except jwt.PyJWTError as e:
            refusal = next((_refuse(reason, message, detail=str(e)) for cls, reason, message in _JWT_REASONS
                            if isinstance(e, cls)), None)
            verified = _signed_payload(id_token, key.key, alg)
            if refusal is None:
                refusal = _refuse("invalid_claim" if verified is not None else "invalid_token",
                                  "The launch token is invalid.", detail=str(e))
            if verified is not None:  # the platform signed it: the audit line names client and deployment
                refusal.ids = audit_ids(verified)
            raise refusal from None

        try:
            return self._checked(claims, registration, expected_nonce)
        except LaunchRefused as refusal:  # signature verified: the audit line names client and deployment
            refusal.ids = {**audit_ids(claims), **refusal.ids}
            raise

    def _checked(self, claims: dict[str, Any], registration: LaunchRegistration, expected_nonce: str | None) -> ValidLaunch:
        """Every check after the signature, in an order that touches nothing before the types are right."""
        if claims.get(C.MESSAGE_TYPE) not in MESSAGE_TYPES:
            raise _refuse("wrong_message_type", "This tool opens resource links and deep linking requests only.",
                          detail=f"message_type={str(claims.get(C.MESSAGE_TYPE))[:64]!r}")
        check_claims(claims, extra_strings=self.extra_strings)
        client_id = self._client_id(claims, registration)
        if claims["iat"] < self.clock() - self.max_age - self.leeway:
            raise _refuse("too_old", "The launch is too old; open the link in your LMS again.")
        try:
            if claims[C.MESSAGE_TYPE] == C.DEEP_LINKING_REQUEST:
                # Upstream's list for deep linking also requires optional claims (azp, tool_platform,
                # launch_presentation); the required ones are in claim_schema.DeepLinkingClaims.
                if claims[C.VERSION] != "1.3.0":
                    raise IncorrectValueError(f"Incorrect value {claims[C.VERSION]!r} for version claim")
            else:
                self._shape.validate_id_token(claims)
        except IncorrectValueError as e:
            reason = "wrong_message_type" if "message_type" in str(e) else "wrong_version"
            raise _refuse(reason, "The LMS sent a kind of launch this tool does not handle.", detail=str(e)) from None
        except ValidationError as e:
            raise _refuse("missing_claim", "The launch lacks information this tool needs.", detail=str(e)) from None
        if claims[C.DEPLOYMENT_ID] not in registration.deployment_ids:
            raise _refuse("unknown_deployment", "This LMS deployment is not registered with coursehub.",
                          status=403, detail=f"deployment_id={claims[C.DEPLOYMENT_ID]!r}")
        if expected_nonce is None or claims["nonce"] != expected_nonce:
            raise _refuse("nonce_mismatch", "This launch was not started from this browser.",
                          page="lti_cookies.html")
        if not self.consume_nonce(claims["nonce"]):
            raise _refuse("replayed", "This launch was already used; open the link in your LMS again.")
        return ValidLaunch(registration, client_id, claims)

    @staticmethod
    def _client_id(claims: dict, registration: LaunchRegistration) -> str:
        aud = claims["aud"]
        auds = aud if isinstance(aud, list) else [aud]
        azp = claims.get("azp")
        if len(auds) > 1 and not azp:
            raise _refuse("azp_missing", "The launch names several audiences but no authorized party.")
        if azp is not None:
            if azp not in registration.client_ids or azp not in auds:
                raise _refuse("wrong_audience", "The launch was authorized for another tool.", detail="azp")
            return azp
        return auds[0]


def _signed_payload(id_token: str, key: Any, alg: str) -> dict[str, Any] | None:
    """The token's claims if its signature verifies (whatever else is wrong with them), else None."""
    try:
        payload = json.loads(jwt.api_jws.PyJWS().decode(id_token, key, algorithms=[alg]))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def audit_ids(claims: dict[str, Any]) -> dict[str, str]:
    """Client id and deployment of a signature-verified launch, for its audit line (ids only)."""
    aud = claims.get("aud")
    azp = claims.get("azp")
    client = azp if isinstance(azp, str) else aud if isinstance(aud, str) else \
        next((a for a in aud if isinstance(a, str)), None) if isinstance(aud, list) else None
    deployment = claims.get(C.DEPLOYMENT_ID)
    ids = {"client_id": client, "deployment": deployment}
    return {k: v[:255] for k, v in ids.items() if isinstance(v, str) and v}
