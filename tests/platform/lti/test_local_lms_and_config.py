"""The local LMS page's guards, its id_tokens, and the hub configuration for LTI."""

from __future__ import annotations

from types import SimpleNamespace

import jwt
import pytest
from tornado import web
from traitlets.config import Config

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.auth import CoursehubAuthenticator, configure, configure_sign_in
from coursehub.platform.courses import load_catalog
from coursehub.platform.local_lms.handlers import LocalLmsBase
from coursehub.platform.local_lms.lms import LocalLms
from coursehub.platform.lti import claims as C
from coursehub.platform.lti.local_registration import CLIENT_ID, linked_courses
from coursehub.platform.settings import load_settings

CATALOG = load_catalog(SOURCE_ROOT / "courses")


def guard(local_lms: bool, hub_ip: str, remote_ip: str) -> None:
    handler = SimpleNamespace(authenticator=SimpleNamespace(local_lms=local_lms, hub_ip=hub_ip),
                              request=SimpleNamespace(remote_ip=remote_ip))
    LocalLmsBase.prepare(handler)


@pytest.mark.parametrize(("local_lms", "hub_ip", "remote_ip"), [
    (True, "127.0.0.1", "10.0.0.7"),
    (True, "0.0.0.0", "127.0.0.1"),
    (True, "192.168.1.2", "192.168.1.2"),
    (False, "127.0.0.1", "127.0.0.1"),
])
def test_local_lms_refused_off_loopback_or_when_off(local_lms, hub_ip, remote_ip):
    with pytest.raises(web.HTTPError) as e:
        guard(local_lms, hub_ip, remote_ip)
    assert e.value.status_code == 403


def test_local_lms_signs_launches_with_its_own_key(tmp_path):
    lms = LocalLms(tmp_path, "http://127.0.0.1:8000/hub/lms")
    course, ctx = linked_courses(CATALOG)[0]
    hint, launch = lms.start(person="Ada Student", role="student", course=course, context=ctx,
                             kind="assignment", item="ps1")
    assert lms.take(hint) is launch and lms.take(hint) is None  # a login hint is single use
    token = lms.id_token(launch, nonce="n", target_link_uri="http://127.0.0.1:8000/hub/coursehub/open")
    claims = jwt.decode(token, lms.key.private_key.public_key(), algorithms=["RS256"], audience=CLIENT_ID)
    assert claims[C.DEPLOYMENT_ID] == "local-deployment"
    assert claims[C.CONTEXT]["id"] == "demo-101-context"
    assert claims[C.CUSTOM] == {"assignment": "ps1"}
    assert claims["sub"] == "local-ada-student"
    assert jwt.get_unverified_header(token)["kid"] == lms.key.kid
    assert (tmp_path / "lti" / "local-lms-key.pem").stat().st_mode & 0o077 == 0


def settings(tmp_path, **extra):
    data = {"state_dir": str(tmp_path), "auth": {"dev_login": False}, **extra}
    import yaml

    f = tmp_path / "settings.yaml"
    f.write_text(yaml.safe_dump(data))
    return load_settings(f)


def test_configure_local_mode_registers_the_local_lms(tmp_path):
    c = Config()
    configure_sign_in(c, settings(tmp_path), CATALOG)
    assert c.JupyterHub.authenticator_class is CoursehubAuthenticator
    (reg,) = c.CoursehubAuthenticator.platforms
    assert reg["name"] == "local-lms" and reg["local"] is True
    assert "local-deployment" in reg["deployment_ids"]
    assert c.CoursehubAuthenticator.local_lms is True
    assert c.Authenticator.manage_groups is True


def test_configure_kubernetes_mode_has_no_local_lms(tmp_path):
    s = settings(tmp_path, mode="kubernetes", hub={"ip": "0.0.0.0", "public_url": "https://hub.example.edu"},
                 spawner={"backend": "kubernetes"})
    s.auth.lti.platforms = []
    c = Config()
    configure(c, s, CATALOG)
    assert c.CoursehubAuthenticator.platforms == []
    assert c.CoursehubAuthenticator.local_lms is False
    assert c.CoursehubAuthenticator.uri_scheme == "https"
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"samesite": "None", "secure": True}


def test_dev_login_is_off_by_default():
    from coursehub.platform.settings import AuthSettings

    assert AuthSettings().dev_login is False
