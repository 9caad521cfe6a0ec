"""The typed schema of the launch claims coursehub reads or keeps, checked before anything else.

A platform-signed token is still untrusted input: a wrong JSON type or a megabyte-long value must
be refused with a clear 4xx before any side effect (no nonce spent, no user, no session, no row).
Bounds follow the LTI 1.3 / OIDC limits (`sub`, `deployment_id`, `context.id`, `resource_link.id`:
255 characters) and always fit the columns of `store.py`, on PostgreSQL too. Refusal details name
the claim and the problem, never the value (it may be personal data).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)
from pydantic import ValidationError as PydanticError

from . import claims as C
from .refusal import LaunchRefused

#: Characters per claim (PostgreSQL VARCHAR counts characters). Columns in store.py are 512 wide.
ID_MAX = 255
NAME_MAX = 512
EMAIL_MAX = 320
URL_MAX = 2048
TITLE_MAX = 1024
#: The whole claim set, serialized: real launches are a few kilobytes.
CLAIMS_MAX_BYTES = 64 * 1024
#: Free-form objects we keep (custom parameters) or ignore (presentation, platform info).
OBJECT_MAX_BYTES = 16 * 1024
#: The deep linking request's opaque `data`, echoed in the response form.
DL_DATA_MAX = 8192

Id = Annotated[StrictStr, StringConstraints(min_length=1, max_length=ID_MAX)]
Short = Annotated[StrictStr, StringConstraints(max_length=ID_MAX)]
Name = Annotated[StrictStr, StringConstraints(max_length=NAME_MAX)]
Url = Annotated[StrictStr, StringConstraints(max_length=URL_MAX)]
Title = Annotated[StrictStr, StringConstraints(max_length=TITLE_MAX)]
Number = StrictInt | StrictFloat


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class ResourceLink(_Part):
    id: Id
    title: Title | None = None
    description: Annotated[StrictStr, StringConstraints(max_length=OBJECT_MAX_BYTES)] | None = None


class Context(_Part):
    id: Id
    label: Title | None = None
    title: Title | None = None
    type: Annotated[list[Url], Field(max_length=20)] | None = None


class AgsEndpoint(_Part):
    scope: Annotated[list[Url], Field(max_length=20)] = []
    lineitems: Url | None = None
    lineitem: Url | None = None


class Nrps(_Part):
    context_memberships_url: Url
    service_versions: Annotated[list[Short], Field(max_length=10)] = []


def _small_object(value: Any) -> Any:
    if value is not None and len(json.dumps(value, default=str)) > OBJECT_MAX_BYTES:
        raise ValueError("object too large")
    return value


class LaunchClaims(_Part):
    """The claims of an LtiResourceLinkRequest, as far as coursehub reads or keeps them."""

    iss: Url
    sub: Id
    aud: Short | Annotated[list[Short], Field(min_length=1, max_length=20)]
    azp: Short | None = None
    exp: Number
    iat: Number
    nonce: Short
    name: Name | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    middle_name: Name | None = None
    email: Annotated[StrictStr, StringConstraints(max_length=EMAIL_MAX)] | None = None
    message_type: Short = Field(alias=C.MESSAGE_TYPE)
    version: Short = Field(alias=C.VERSION)
    deployment_id: Id = Field(alias=C.DEPLOYMENT_ID)
    target_link_uri: Url = Field(alias=C.TARGET_LINK_URI)
    resource_link: ResourceLink = Field(alias=C.RESOURCE_LINK)
    roles: Annotated[list[Url], Field(max_length=100)] = Field(alias=C.ROLES)
    role_scope_mentor: Annotated[list[Id], Field(max_length=1000)] | None = Field(
        None, alias=C.LTI + "role_scope_mentor")
    context: Context | None = Field(None, alias=C.CONTEXT)
    custom: dict[Annotated[StrictStr, StringConstraints(max_length=ID_MAX)], Any] | None = Field(
        None, alias=C.CUSTOM)
    launch_presentation: dict[str, Any] | None = Field(None, alias=C.LAUNCH_PRESENTATION)
    tool_platform: dict[str, Any] | None = Field(None, alias=C.TOOL_PLATFORM)
    ags: AgsEndpoint | None = Field(None, alias=C.AGS_ENDPOINT)
    nrps: Nrps | None = Field(None, alias=C.NRPS)

    _objects = field_validator("custom", "launch_presentation", "tool_platform")(_small_object)


class DeepLinkingSettings(_Part):
    """The `deep_linking_settings` claim of an LtiDeepLinkingRequest (Deep Linking 2.0, section 4.4.1)."""

    deep_link_return_url: Url
    accept_types: Annotated[list[Short], Field(min_length=1, max_length=20)]
    accept_presentation_document_targets: Annotated[list[Short], Field(max_length=20)] = []
    accept_media_types: Short | None = None
    accept_multiple: bool | None = None
    accept_lineitem: bool | None = None
    auto_create: bool | None = None
    title: Title | None = None
    text: Annotated[StrictStr, StringConstraints(max_length=OBJECT_MAX_BYTES)] | None = None
    #: Opaque to us (Canvas sends a JWT), echoed back in the response; never stored.
    data: Annotated[StrictStr, StringConstraints(max_length=DL_DATA_MAX)] | None = None


class DeepLinkingClaims(LaunchClaims):
    """An LtiDeepLinkingRequest: no resource link, a deep_linking_settings claim instead."""

    resource_link: ResourceLink | None = Field(None, alias=C.RESOURCE_LINK)  # type: ignore[assignment]
    deep_linking_settings: DeepLinkingSettings = Field(alias=C.DEEP_LINKING_SETTINGS)


_TOO_LONG = {"string_too_long", "too_long"}


def check_claims(claims: dict[str, Any], *, extra_strings: tuple[str, ...] = ()) -> None:
    """Refuse (LaunchRefused, 400) claims of the wrong type or size; say which, never the value.

    `extra_strings` are further claims that must be short strings when present (e.g. the
    configured account-linking claim, which is stored).
    """
    model = DeepLinkingClaims if claims.get(C.MESSAGE_TYPE) == C.DEEP_LINKING_REQUEST else LaunchClaims
    try:
        model.model_validate(claims)
    except PydanticError as e:
        raise _refusal(e.errors(include_input=False, include_url=False)) from None
    for name in extra_strings:
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > NAME_MAX):
            reason = "claim_too_long" if isinstance(value, str) else "invalid_claim"
            raise LaunchRefused(reason, "The launch carries a value this tool cannot accept.", detail=f"claim={name}")
    if len(json.dumps(claims, default=str)) > CLAIMS_MAX_BYTES:
        raise LaunchRefused("claim_too_long", "The launch message is larger than this tool accepts.",
                            detail=f"claims over {CLAIMS_MAX_BYTES} bytes")


def _refusal(errors: list[Any]) -> LaunchRefused:
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(claims)"
    kind = first.get("type", "")
    if kind in ("missing", "string_too_short"):
        return LaunchRefused("missing_claim", "The launch lacks information this tool needs.",
                             detail=f"claim={where} missing")
    if kind in _TOO_LONG:
        return LaunchRefused("claim_too_long", "The launch carries a value longer than this tool accepts.",
                             detail=f"claim={where} too long")
    return LaunchRefused("invalid_claim", "The launch carries a value of the wrong kind; the LMS sent a "
                         "malformed launch.", detail=f"claim={where} {kind}")
