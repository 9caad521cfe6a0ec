"""The local platform end to end: a real hub, a real sign-in, a real JupyterLab server."""

from __future__ import annotations

import json
import re

import pytest
import requests
from support.hub import running_hub

pytestmark = pytest.mark.hubcompat


def test_hub_login_spawn_lab_and_clean_shutdown(tmp_path):
    with running_hub(tmp_path) as hub:
        assert requests.get(f"{hub.url}/hub/api", timeout=10).json()["version"]

        session = hub.login("alice")
        user = hub.user("alice")
        assert "course:demo-101:student" in user["groups"]

        server_url = hub.start_server("alice", course="demo-101")
        lab = session.get(f"{server_url}lab", timeout=60)
        assert lab.status_code == 200
        assert "JupyterLab" in lab.text

        # The course profile reached the server's environment, and students get no formgrader.
        api = session.get(f"{server_url}api/status", timeout=30)
        assert api.status_code == 200
        home = hub.state_dir / "homes" / "alice"
        assert home.is_dir()
        # Students get no formgrader: neither the server extension nor the JupyterLab plugin.
        assert session.get(f"{server_url}formgrader", timeout=30).status_code == 404
        page_config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab.text, re.S)[1])
        assert "@jupyter/nbgrader:formgrader" in page_config["disabledExtensions"]
        # and Lab does not check for (or offer) a rebuild on every page load
        assert page_config["buildCheck"] is False and page_config["buildAvailable"] is False

        # A course the user is not in is refused with a clear 400, not a crash.
        hub.login("carol")
        r = hub.api("POST", "/users/carol/server", json={"course": "no-such-course"})
        assert r.status_code == 400
        assert "not enrolled in the course 'no-such-course'" in hub.log()
        assert "" not in hub.user("carol")["servers"]

        # Another user cannot open alice's server.
        bob = hub.login("bob")
        r = bob.get(f"{server_url}lab", timeout=30, allow_redirects=False)
        assert r.status_code in (302, 403)
        assert "/user/alice/" not in r.headers.get("Location", "")

        hub.stop_server("alice")
    # running_hub asserts on exit that the hub, proxy, services and user servers are all gone.
