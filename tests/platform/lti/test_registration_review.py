"""Operators review dynamic registrations: `coursehub lti platforms|pending|approve|reject`, the state
the store keeps (pending on arrival; older rows stay active), and what a pending or rejected platform
lacks (launch check, grade sync)."""

from __future__ import annotations

import json

import pytest
import yaml

from coursehub.cli import main
from coursehub.platform.lti import services
from coursehub.platform.lti.dynamic_registration import registration_from
from coursehub.platform.lti.registration_store import (
    ACTIVE,
    DISABLED,
    PENDING,
    RegistrationStore,
    registrations,
)
from coursehub.platform.settings import load_settings

CONFIG = {"issuer": "https://lms.example.edu", "authorization_endpoint": "https://lms.example.edu/auth",
          "token_endpoint": "https://lms.example.edu/token", "jwks_uri": "https://lms.example.edu/jwks",
          "registration_endpoint": "https://lms.example.edu/register"}

YAML_PLATFORM = {"name": "blackboard", "issuer": "https://blackboard.com", "client_ids": ["bb-1"],
                 "deployment_ids": ["bd-1"], "auth_login_url": "https://developer.blackboard.com/auth",
                 "jwks_url": "https://developer.blackboard.com/jwks", "token_url": "https://developer.blackboard.com/token"}


@pytest.fixture
def setup(tmp_path):
    """A settings file and an LTI database with two stored registrations."""
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                             "auth": {"lti": {"platforms": [YAML_PLATFORM]}}}))
    settings = load_settings(settings_file)
    (tmp_path / "state").mkdir()
    store = services.open_store(settings)
    regs = RegistrationStore(store.engine)
    canvas = registration_from("canvas", CONFIG, {"client_id": "c-1", "https://purl.imsglobal.org/spec/"
                                                  "lti-tool-configuration": {"deployment_id": "d-1"}})
    moodle = registration_from("moodle", {**CONFIG, "issuer": "https://moodle.example.edu"}, {"client_id": "m-1"})
    regs.save(canvas)
    regs.save(moodle)
    yield settings_file, settings, regs, canvas
    store.dispose()


def test_store_states(setup):
    _, _, regs, canvas = setup
    assert [r["state"] for r in regs.listing()] == [PENDING, PENDING]  # the LMS asked; nobody approved yet
    assert regs.blocked(canvas) == PENDING
    assert regs.all(active_only=True) == []  # no grades or rosters to a pending LMS
    assert regs.set_state("canvas", ACTIVE, "ops") and regs.blocked(canvas) is None
    assert [r.name for r in regs.all(active_only=True)] == ["canvas"]
    assert regs.set_state("canvas", DISABLED, "ops") and regs.blocked(canvas) == DISABLED
    assert regs.set_state("moodle", DISABLED, "ops")  # a pending one can be rejected too
    assert regs.all(active_only=True) == []
    assert [r.name for r in regs.all()] == ["canvas", "moodle"]  # kept: approve undoes reject
    # a settings entry that took the name (other values) is another registration: not affected
    assert regs.blocked(registration_from("canvas", CONFIG, {"client_id": "c-2"})) is None
    assert regs.set_state("canvas", ACTIVE, "ops") and regs.blocked(canvas) is None
    assert not regs.set_state("nope", DISABLED, "ops")
    for state in (PENDING, "pending-forever"):  # pending is only a new arrival's state
        with pytest.raises(ValueError):
            regs.set_state("canvas", state, "ops")


def test_registrations_stored_before_approval_existed_stay_active(setup):
    """An upgrade must not switch off LMSes that were launching: rows without a state are active."""
    settings_file, settings, regs, _ = setup
    old = registration_from("d2l", {**CONFIG, "issuer": "https://d2l.example.edu"}, {"client_id": "d-1"})
    with regs.engine.begin() as c:  # as the previous version stored it: no state row
        c.execute(registrations.insert().values(name="d2l", issuer=old.issuer, data=json.dumps(old.to_dict()),
                                                created_at=1.0))
    assert {r["name"]: r["state"] for r in regs.listing()}["d2l"] == ACTIVE
    assert regs.blocked(old) is None
    assert [r.name for r in regs.all(active_only=True)] == ["d2l"]
    assert "d2l" in services.registrations(settings) and "canvas" not in services.registrations(settings)


def test_cli_pending_approve_reject_and_platforms(setup, capsys):
    settings_file, settings, regs, canvas = setup
    cli = ["lti", "--settings", str(settings_file)]
    assert main([*cli, "pending"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["NAME", "STATE", "ISSUER"]
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["canvas", "pending"], ["moodle", "pending"]]
    assert "d-1" in out
    # the grading side (grades, rosters) does not reach a pending LMS
    assert "canvas" not in services.registrations(settings)

    assert main([*cli, "approve", "canvas"]) == 0
    assert "canvas: active" in capsys.readouterr().out
    assert regs.blocked(canvas) is None and "canvas" in services.registrations(settings)
    assert main([*cli, "reject", "moodle"]) == 0  # a pending one is switched off
    assert "refused" in capsys.readouterr().out
    assert main([*cli, "pending", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([*cli, "pending"]) == 0
    assert "no registrations wait for approval" in capsys.readouterr().out

    # every platform the hub knows: the settings one and the stored ones, with their states
    assert main([*cli, "platforms", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n: r["state"] for n, r in rows.items()} == {"blackboard": "settings", "canvas": "active",
                                                        "moodle": "disabled"}
    assert rows["blackboard"]["client_ids"] == ["bb-1"] and rows["canvas"]["deployment_ids"] == ["d-1"]
    assert " by cli" in rows["moodle"]["changed"]  # who decided, and when
    assert main([*cli, "platforms"]) == 0
    table = capsys.readouterr().out
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [
        ["blackboard", "settings"], ["canvas", "active"], ["moodle", "disabled"]]

    assert main([*cli, "reject", "canvas"]) == 0 and regs.blocked(canvas) == DISABLED
    assert "canvas" not in services.registrations(settings)
    capsys.readouterr()
    assert main([*cli, "reject", "no-such"]) == 1
    assert "no dynamically registered platform is named 'no-such'" in capsys.readouterr().err
    assert main([*cli, "approve", "blackboard"]) == 1
    assert "auth.lti.platforms" in capsys.readouterr().err


def test_cli_without_a_hub_database_says_so(tmp_path, capsys):
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                             "auth": {"lti": {"platforms": [YAML_PLATFORM]}}}))
    assert main(["lti", "--settings", str(settings_file), "pending"]) == 1
    assert "no LTI database" in capsys.readouterr().err
    assert main(["lti", "--settings", str(settings_file), "platforms"]) == 0  # the settings ones still
    assert "blackboard" in capsys.readouterr().out
    assert not (tmp_path / "state" / "lti.sqlite").exists()
