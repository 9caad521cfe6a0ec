"""Operators review dynamic registrations: `coursehub lti registrations|approve|reject`, the state
the store keeps, and what a rejected platform loses (launch check, grade sync)."""

from __future__ import annotations

import json

import pytest
import yaml

from coursehub.cli import main
from coursehub.platform.lti import services
from coursehub.platform.lti.dynamic_registration import registration_from
from coursehub.platform.lti.registration_store import ACTIVE, DISABLED, RegistrationStore
from coursehub.platform.settings import load_settings

CONFIG = {"issuer": "https://lms.example.edu", "authorization_endpoint": "https://lms.example.edu/auth",
          "token_endpoint": "https://lms.example.edu/token", "jwks_uri": "https://lms.example.edu/jwks",
          "registration_endpoint": "https://lms.example.edu/register"}


@pytest.fixture
def setup(tmp_path):
    """A settings file and an LTI database with two stored registrations."""
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
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
    assert [r["state"] for r in regs.listing()] == [ACTIVE, ACTIVE]  # the one-time link was the approval
    assert not regs.is_disabled(canvas)
    assert regs.set_state("canvas", DISABLED, "ops")
    assert regs.is_disabled(canvas)
    assert [r.name for r in regs.all(active_only=True)] == ["moodle"]
    assert [r.name for r in regs.all()] == ["canvas", "moodle"]  # kept: approve undoes reject
    # a settings entry that took the name (other values) is another registration: not affected
    assert not regs.is_disabled(registration_from("canvas", CONFIG, {"client_id": "c-2"}))
    assert regs.set_state("canvas", ACTIVE, "ops") and not regs.is_disabled(canvas)
    assert not regs.set_state("nope", DISABLED, "ops")
    with pytest.raises(ValueError):
        regs.set_state("canvas", "pending-forever", "ops")


def test_cli_lists_rejects_and_approves(setup, capsys):
    settings_file, settings, regs, canvas = setup
    cli = ["lti", "--settings", str(settings_file)]
    assert main([*cli, "registrations"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["NAME", "STATE", "ISSUER"]
    assert "canvas" in out and "moodle" in out and "d-1" in out

    assert main([*cli, "reject", "canvas"]) == 0
    assert "refused" in capsys.readouterr().out
    assert regs.is_disabled(canvas)
    assert main([*cli, "registrations", "--disabled", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["state"], row["client_ids"]) == ("canvas", "disabled", ["c-1"])
    assert " by cli" in row["changed"]  # who decided, and when
    # the grading side (grades, rosters) no longer reaches a rejected LMS
    assert "canvas" not in services.registrations(settings) and "moodle" in services.registrations(settings)

    assert main([*cli, "approve", "canvas"]) == 0
    assert not regs.is_disabled(canvas) and "canvas" in services.registrations(settings)
    capsys.readouterr()
    assert main([*cli, "reject", "no-such"]) == 1
    assert "no dynamically registered platform is named 'no-such'" in capsys.readouterr().err


def test_cli_without_a_hub_database_says_so(tmp_path, capsys):
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    assert main(["lti", "--settings", str(settings_file), "registrations"]) == 1
    assert "no LTI database" in capsys.readouterr().err
    assert not (tmp_path / "state" / "lti.sqlite").exists()
