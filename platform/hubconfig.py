"""Applies validated coursehub settings to a JupyterHub config object.

`jupyterhub_config.py` only calls `apply(c, load_settings(), load_catalog(...))`. Each part of the
hub (network, proxy, authentication, spawner, services) has one function here; the parts that
belong to a subsystem call into that subsystem's package, and the grading service adds its part
through a hub extension (`extensions.py`).
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from coursehub.paths import SOURCE_ROOT

from . import ports
from .auth import configure_sign_in
from .courses import Catalog
from .database import use_wal
from .extensions import hub_extensions
from .profiles import profile_for
from .settings import Settings
from .userconfig import write_role_configs

log = logging.getLogger(__name__)


def apply(c: Any, settings: Settings, catalog: Catalog) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    configure_hub(c, settings)
    configure_proxy(c, settings)
    configure_sign_in(c, settings, catalog)
    configure_spawner(c, settings, catalog)
    configure_services(c, settings, catalog)


def configure_hub(c: Any, settings: Settings) -> None:
    hub = settings.hub
    c.JupyterHub.ip = hub.ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.hub_ip = "127.0.0.1" if settings.local else "0.0.0.0"
    c.JupyterHub.hub_port = hub.hub_port or ports.free_port()
    c.JupyterHub.db_url = settings.hub_db_url()
    if settings.local and not settings.hub.db_url:
        # JupyterHub commits on its event loop (several times per new user, once per new token's
        # first use); in WAL mode a commit is one fsync of the log. The default file only: a
        # database an operator names may sit on a network filesystem, where WAL does not work.
        mode = use_wal(settings.default_hub_db_file())
        if mode != "wal":
            log.warning("the hub's SQLite database stays in %s mode: %s", mode, settings.default_hub_db_file())
    c.JupyterHub.cookie_secret_file = str(settings.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.concurrent_spawn_limit = hub.concurrent_spawn_limit
    c.JupyterHub.active_server_limit = hub.active_server_limit
    templates = Path(__file__).parent / "templates"
    if templates.is_dir():
        c.JupyterHub.template_paths = [str(templates)]
    c.Authenticator.admin_users = set(hub.admin_users)


def configure_proxy(c: Any, settings: Settings) -> None:
    if not settings.local:
        return  # the chart's proxy
    chp = _find_proxy()
    if chp:
        c.ConfigurableHTTPProxy.command = [chp]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub.proxy_api_port or ports.free_port()}"
    c.ConfigurableHTTPProxy.pid_file = str(settings.state_dir / "proxy.pid")


def _find_proxy() -> str | None:
    if SOURCE_ROOT is not None:
        local = SOURCE_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
        if local.exists():
            return str(local)
    return shutil.which("configurable-http-proxy")


def configure_spawner(c: Any, settings: Settings, catalog: Catalog) -> None:
    profiles = {course.id: profile_for(course) for course in catalog}
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = settings.hub.start_timeout
    # A class starting at once on a small machine: servers may take minutes to answer, not seconds.
    c.Spawner.http_timeout = settings.hub.start_timeout
    if settings.spawner.backend == "local":
        from .spawner import LocalCourseSpawner, apply_course_option

        config_root = settings.state_dir / "jupyter-config"
        write_role_configs(config_root, settings)
        c.JupyterHub.spawner_class = LocalCourseSpawner
        c.LocalCourseSpawner.homes_dir = str(settings.homes_dir())
        c.LocalCourseSpawner.role_config_root = str(config_root)
        c.LocalCourseSpawner.course_profiles = profiles
        c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
        c.Spawner.apply_user_options = apply_course_option
    else:
        from .kube.hub_setup import configure_kube_spawner

        configure_kube_spawner(c, settings, catalog)


def configure_services(c: Any, settings: Settings, catalog: Catalog) -> None:
    services: list[dict] = []
    roles: list[dict] = []
    if settings.spawner.idle_timeout > 0:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={settings.spawner.idle_timeout}", "--cull-every=300",
                ],
            }
        )
        roles.append(
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": ["idle-culler"],
            }
        )
    if settings.textbook.enabled and any(course.textbook for course in catalog):
        from .textbook.service import hub_service

        service, user_grant = hub_service(settings, port=settings.textbook.port or ports.free_port())
        services.append(service)
        grant_to_all_users(roles, user_grant["scopes"])
    for extension in hub_extensions():
        if extension.enabled(settings):
            extension.configure(c, settings, catalog, services, roles)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def grant_to_all_users(roles: list[dict], scopes: list[str]) -> None:
    """Add `scopes` to JupyterHub's default 'user' role (defined once, keeping its 'self' scope)."""
    role = next((r for r in roles if r.get("name") == "user"), None)
    if role is None:
        role = {"name": "user", "scopes": ["self"]}
        roles.append(role)
    role["scopes"] = list(dict.fromkeys([*role.get("scopes", []), *scopes]))
