"""The tool configuration JSON, against the fields Canvas's developer-key import documents
(developerdocs.instructure.com, "Configuring" LTI 1.3 tools: JSON configuration)."""

from __future__ import annotations

from urllib.parse import urlsplit

from coursehub.platform.lti.tool_config import tool_configuration

HUB = "https://hub.example.edu/hub/"
#: Scopes Canvas grants to LTI 1.3 keys (the AGS and NRPS ones are all coursehub asks for).
CANVAS_SCOPES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://canvas.instructure.com/lti-ags/progress/scope/show",
    "https://canvas.instructure.com/lti/public_jwk/scope/update",
    "https://canvas.instructure.com/lti/account_lookup/scope/show",
}
CANVAS_PRIVACY = {"public", "name_only", "email_only", "anonymous"}
#: Placements that take a deep linking request in Canvas (content selection).
CANVAS_DEEP_LINKING = {"link_selection", "assignment_selection", "editor_button", "homework_submission",
                       "migration_selection", "module_index_menu_modal", "module_menu_modal",
                       "conference_selection", "submission_type_selection"}
CANVAS_PLACEMENTS = CANVAS_DEEP_LINKING | {"course_navigation", "account_navigation", "user_navigation",
                                          "global_navigation", "assignment_menu", "module_menu"}


def is_https(url: str) -> bool:
    return urlsplit(url).scheme == "https" and bool(urlsplit(url).hostname)


def test_canvas_developer_key_shape():
    config = tool_configuration(HUB, "coursehub", "Notebooks for your course")
    for key in ("title", "description"):
        assert isinstance(config[key], str) and config[key]
    for key in ("target_link_uri", "oidc_initiation_url", "public_jwk_url"):
        assert is_https(config[key]), key
    assert "public_jwk" not in config  # one of public_jwk / public_jwk_url: the URL, so keys can rotate
    assert set(config["scopes"]) <= CANVAS_SCOPES
    assert set(config["scopes"]) >= {s for s in CANVAS_SCOPES if "imsglobal" in s}  # AGS and NRPS
    assert isinstance(config["custom_fields"], dict)
    assert all(isinstance(v, str) for v in config["custom_fields"].values())
    (canvas,) = [e for e in config["extensions"] if e["platform"] == "canvas.instructure.com"]
    assert canvas["privacy_level"] in CANVAS_PRIVACY
    assert canvas["domain"] == "hub.example.edu"
    placements = canvas["settings"]["placements"]
    by_name = {p["placement"]: p for p in placements}
    assert len(by_name) == len(placements) and set(by_name) <= CANVAS_PLACEMENTS
    for p in placements:
        assert p["message_type"] in ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")
        assert is_https(p["target_link_uri"])
        if p["message_type"] == "LtiDeepLinkingRequest":
            assert p["placement"] in CANVAS_DEEP_LINKING
    assert by_name["link_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert by_name["assignment_selection"]["message_type"] == "LtiDeepLinkingRequest"


def test_redirect_uri_and_messages():
    config = tool_configuration(HUB, "coursehub", "d")
    assert config["redirect_uris"] == ["https://hub.example.edu/hub/lti13/oauth_callback"]
    assert {m["type"] for m in config["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
