"""How the textbooks service is wired into the hub configuration."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_catalog
from coursehub.platform.hubconfig import configure_services
from coursehub.platform.settings import load_settings

pytestmark = pytest.mark.hubcompat


def services(settings):
    c = Config()
    configure_services(c, settings, load_catalog(settings.courses_dir))
    return {s["name"]: s for s in c.JupyterHub.services}, {r["name"]: r for r in c.JupyterHub.load_roles}


def test_local_service_on_loopback_and_readable_by_every_user(tmp_path):
    settings = load_settings(state_dir=str(tmp_path), courses_dir=str(SOURCE_ROOT / "courses"))
    by_name, roles = services(settings)
    svc = by_name["textbooks"]
    assert svc["url"].startswith("http://127.0.0.1:") and int(svc["url"].rsplit(":", 1)[1]) > 0
    assert svc["command"][1:] == ["-m", "coursehub.platform.textbook.service"]
    assert svc["oauth_no_confirm"] is True
    assert svc["environment"]["COURSEHUB_STATE_DIR"] == str(tmp_path)
    assert "api_token" not in svc  # the hub makes one; nothing secret in the config
    scopes = roles["user"]["scopes"]
    assert "self" in scopes and "access:services!service=textbooks" in scopes
    assert len(scopes) == len(set(scopes))


def test_disabled_or_no_textbook_means_no_service(tmp_path):
    settings = load_settings(state_dir=str(tmp_path), courses_dir=str(SOURCE_ROOT / "courses"))
    settings.textbook.enabled = False
    by_name, roles = services(settings)
    assert "textbooks" not in by_name
    assert "access:services!service=textbooks" not in roles.get("user", {}).get("scopes", [])


def test_at_scale_the_proxy_reaches_it_through_the_hub_service(tmp_path):
    settings = load_settings(state_dir=str(tmp_path), courses_dir=str(SOURCE_ROOT / "courses"),
                             mode="kubernetes", auth={"dev_login": False})
    by_name, _ = services(settings)
    assert by_name["textbooks"]["url"] == "http://hub:8092"
