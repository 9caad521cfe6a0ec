"""The test LMS: found from `coursehub up`'s state folder, and signing launches the hub can verify."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from support.local_state import write_local_state

from coursehub.loadtest.platform import local_platform
from coursehub.platform.lti import claims as C
from coursehub.platform.lti.keys import load_or_create_key_pair, local_lms_key_path
from coursehub.platform.settings import Settings


def test_local_platform_from_the_state_folder(tmp_path: Path) -> None:
    state = write_local_state(tmp_path)
    url, platform, course, service_url = local_platform(None, state, None)
    assert url == "http://127.0.0.1:8123"
    assert service_url == f"http://127.0.0.1:{Settings().grading.port}/services/grading/"  # as the user servers reach it
    assert (platform.issuer, platform.client_id, platform.course_id) == (f"{url}/hub/lms", "coursehub-local", course.id)
    assert platform.kid == load_or_create_key_pair(local_lms_key_path(state)).kid  # the hub's own key


def test_no_local_platform_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="coursehub up"):
        local_platform(None, tmp_path, None)


def test_unknown_course(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no course named nope"):
        local_platform(None, write_local_state(tmp_path), "nope")


def test_id_token_verifies_with_the_platform_key(tmp_path: Path) -> None:
    state = write_local_state(tmp_path)
    _url, platform, course, _service = local_platform(None, state, None)
    token = platform.id_token(sub="loadtest-x-s0001", name="L", role="student", nonce="n1",
                              target_link_uri="http://127.0.0.1:8123/hub/coursehub/open", assignment="ps1")
    public = load_or_create_key_pair(local_lms_key_path(state)).private_key.public_key()
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="coursehub-local")
    assert jwt.get_unverified_header(token)["kid"] == platform.kid
    assert (claims["nonce"], claims[C.CUSTOM], claims[C.CONTEXT]["id"]) == ("n1", {"assignment": "ps1"},
                                                                             platform.context_id)
    assert claims[C.DEPLOYMENT_ID] == platform.deployment_id and claims[C.ROLES][0].endswith("#Learner")
