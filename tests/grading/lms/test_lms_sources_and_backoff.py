"""The grading side reads the hub's LTI records through platform.lti.services (one rule for the
platforms, the store and the tool key), and backs off with one helper."""

from __future__ import annotations

import random

import pytest

from coursehub.grading.lms.retry import backoff_seconds
from coursehub.grading.lms.sources import load_tool_key, lti_store_url, platforms_from_settings
from coursehub.platform.lti import services
from coursehub.platform.lti.dynamic_registration import registration_from
from coursehub.platform.lti.keys import tool_key_path
from coursehub.platform.lti.registration_store import RegistrationStore
from coursehub.platform.settings import load_settings

CONFIG = {"issuer": "https://lms.example.edu", "authorization_endpoint": "https://lms.example.edu/auth",
          "token_endpoint": "https://lms.example.edu/token", "jwks_uri": "https://lms.example.edu/jwks"}


def test_grading_sees_the_same_platforms_as_the_hub(tmp_path):
    """Local LMS page (local mode) and a dynamically registered LMS: the same names, issuers and
    token URLs on both sides, and the same store."""
    settings = load_settings(None, state_dir=str(tmp_path))
    assert list(platforms_from_settings(settings)) == list(services.registrations(settings)) == ["local-lms"]
    store = services.open_store(settings)
    try:
        RegistrationStore(store.engine).save(registration_from("canvas", CONFIG, {"client_id": "c-1"}), state="active")
    finally:
        store.dispose()
    hub = services.registrations(settings)
    grading = platforms_from_settings(settings)
    assert sorted(grading) == sorted(hub) == ["canvas", "local-lms"]
    for name, reg in hub.items():
        assert (grading[name].issuer, grading[name].token_url) == (reg.issuer, reg.token_url)
    assert lti_store_url(settings) == services.store_url(settings)


def test_grading_reads_the_hubs_tool_key_and_never_makes_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="start the hub once"):
        load_tool_key(tmp_path)
    assert not tool_key_path(tmp_path).exists()
    hub_key = services.tool_key(load_settings(None, state_dir=str(tmp_path)))  # the hub creates it
    key = load_tool_key(tmp_path)
    assert (key.kid, key.alg) == (hub_key.kid, hub_key.alg)


def test_one_backoff_rule():
    """Exact doubling without jitter (queue, worker), spread with it (outbox), capped, and no float
    overflow however long an outage lasts."""
    from coursehub.grading.queue import backoff_seconds as queue_backoff

    assert [backoff_seconds(n, 0.5, 30.0, jitter=0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert queue_backoff(10_000) == 600 and backoff_seconds(10_000, jitter=0) == 3600
    rng = random.Random(7)
    spread = {backoff_seconds(3, 2.0, rng=rng) for _ in range(50)}
    assert len(spread) > 1 and all(7.2 <= d <= 8.8 for d in spread)
