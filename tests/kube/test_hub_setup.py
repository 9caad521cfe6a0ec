"""hub_setup on top of what z2jh's jupyterhub_config.py sets from the values: the grading
service's grants and user-server environment, and the textbooks service, merged by name."""

from __future__ import annotations

from traitlets.config import Config

from coursehub.platform.kube.hub_setup import configure_extensions, merge_named
from coursehub.platform.settings import load_settings


def z2jh_like_config() -> Config:
    c = Config()
    c.JupyterHub.services = [{"name": "grading", "url": "http://coursehub-grading:8090", "api_token": "from-secret"}]
    c.JupyterHub.load_roles = [{"name": "coursehub-grading", "services": ["grading"], "scopes": ["list:users"]}]
    c.KubeSpawner.environment = {"COURSEHUB_GRADING_URL": "http://coursehub-grading:8090/services/grading/"}
    return c


def test_user_servers_may_call_the_grading_service_and_know_what_they_teach(demo_catalog):
    c = z2jh_like_config()
    configure_extensions(c, load_settings(), demo_catalog)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "access:services!service=grading" in roles["user"]["scopes"]
    assert "access:services!service=grading" in roles["server"]["scopes"]
    assert "list:users" in roles["coursehub-grading"]["scopes"]  # the values' scopes stay
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["grading"]["api_token"] == "from-secret" and services["grading"]["url"].endswith(":8090")
    assert "textbooks" in services
    env = c.KubeSpawner.environment
    assert callable(env["COURSEHUB_STAFF_COURSES"])
    assert env["COURSEHUB_GRADING_URL"] == "http://coursehub-grading:8090/services/grading/"


def test_merge_named_keeps_values_and_unions_lists():
    merged = merge_named([{"name": "a", "scopes": ["x"], "url": "1"}], [{"name": "a", "scopes": ["y"], "url": "2"},
                                                                      {"name": "b"}], list_keys=("scopes",))
    assert merged == [{"name": "a", "scopes": ["x", "y"], "url": "1"}, {"name": "b"}]
