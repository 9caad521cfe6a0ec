"""What coursehub tells an LMS about itself: Canvas's developer-key JSON and the LTI tool
configuration of Dynamic Registration, from one list of endpoints, messages and scopes.

Canvas imports the JSON of `/hub/lti13/config` as a developer key: it reads `title`,
`description`, `oidc_initiation_url`, `target_link_uri`, `public_jwk_url`, `scopes`,
`custom_fields` and `extensions[].settings.placements` (each with `placement`, `message_type`,
`target_link_uri`); unknown keys are ignored, so the same JSON also lists the generic fields. Its
custom field `canvas_user_id=$Canvas.user.id` gives each launch Canvas's numeric user id, which
Canvas's gradebook import needs (`platform_ids.py`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from jupyterhub.utils import url_path_join

from . import claims as C
from .platform_ids import CANVAS_USER_ID, CANVAS_USER_ID_VARIABLE

SCOPES = (*C.AGS_SCOPES, C.NRPS_SCOPE)
CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")
#: Canvas placements: links in modules and rich content (deep linking), assignments, course navigation.
CANVAS_PLACEMENTS = (
    ("link_selection", C.DEEP_LINKING_REQUEST),
    ("assignment_selection", C.DEEP_LINKING_REQUEST),
    ("course_navigation", C.RESOURCE_LINK_REQUEST),
)


def endpoints(hub: str) -> dict[str, str]:
    """The tool's URLs, `hub` being the public hub URL (scheme://host/base/hub/)."""
    return {
        "login": url_path_join(hub, "lti13/oauth_login"),
        "launch": url_path_join(hub, "lti13/oauth_callback"),
        "target": url_path_join(hub, "coursehub/open"),
        "jwks": url_path_join(hub, "lti13/jwks"),
    }


def tool_configuration(hub: str, title: str, description: str) -> dict:
    """Canvas developer-key JSON (plus the generic LTI 1.3 fields)."""
    urls = endpoints(hub)
    return {
        "title": title,
        "description": description,
        "oidc_initiation_url": urls["login"],
        "target_link_uri": urls["target"],
        "redirect_uris": [urls["launch"]],
        "public_jwk_url": urls["jwks"],
        "jwks_uri": urls["jwks"],
        "scopes": list(SCOPES),
        "messages": [{"type": C.RESOURCE_LINK_REQUEST}, {"type": C.DEEP_LINKING_REQUEST}],
        # Canvas's numeric user id on every launch: its gradebook import matches students by it
        "custom_fields": {CANVAS_USER_ID: CANVAS_USER_ID_VARIABLE},
        "claims": list(CLAIMS),
        "extensions": [{
            "domain": urlsplit(hub).hostname or "",
            "platform": "canvas.instructure.com",
            "privacy_level": "public",
            "tool_id": "coursehub",
            "settings": {
                "text": title,
                "placements": [{
                    "placement": placement, "message_type": message, "text": title,
                    "target_link_uri": urls["target"],
                    **({"windowTarget": "_blank"} if message == C.RESOURCE_LINK_REQUEST else {}),
                } for placement, message in CANVAS_PLACEMENTS],
            },
        }],
    }


def registration_request(hub: str, title: str, description: str) -> dict:
    """The tool's client metadata for LTI Dynamic Registration 1.0 (section 3.1)."""
    urls = endpoints(hub)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls["login"],
        "redirect_uris": [urls["launch"]],
        "client_name": title,
        "jwks_uri": urls["jwks"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(SCOPES),
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            "domain": urlsplit(hub).netloc,
            "description": description,
            "target_link_uri": urls["target"],
            "claims": list(CLAIMS),
            "custom_parameters": {CANVAS_USER_ID: CANVAS_USER_ID_VARIABLE},
            "messages": [
                {"type": C.RESOURCE_LINK_REQUEST, "target_link_uri": urls["target"]},
                {"type": C.DEEP_LINKING_REQUEST, "target_link_uri": urls["target"], "label": f"Add from {title}",
                 "placements": ["ContentArea", "link_selection", "assignment_selection"],
                 "supported_types": ["ltiResourceLink"]},
            ],
        },
    }
