"""A state folder as `coursehub up` leaves it (settings.effective.yaml), for the load-test tool to find."""

from __future__ import annotations

from pathlib import Path

import yaml

from coursehub.paths import SOURCE_ROOT


def write_local_state(tmp_path: Path, port: int = 8123) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    settings = {"mode": "local", "state_dir": str(state), "hub": {"ip": "127.0.0.1", "port": port}}
    if SOURCE_ROOT is not None:
        settings["courses_dir"] = str(SOURCE_ROOT / "courses")
    (state / "settings.effective.yaml").write_text(yaml.safe_dump(settings))
    return state
