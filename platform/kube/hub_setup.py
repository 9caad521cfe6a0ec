"""Hub-side setup inside the z2jh hub pod (called from the `hub.extraConfig` snippet that
`coursehub helm-values` writes).

z2jh's own `jupyterhub_config.py` already configures the hub's network, database, proxy and
services from the chart values, so this applies only what is ours: the course spawner, the
identity part of the hub config (`platform/auth.py` `configure_sign_in`), and what the hub
extensions (the grading service) and the textbooks service add locally too: their role grants
(user servers may call the grading service), the user-server environment (the grading URL, the
courses a user teaches) and the textbooks service. They are merged into what z2jh set from the
values (a service or role of the same name keeps its values and gains ours), so one code path
decides these on a laptop and on a cluster. It reads the same settings file as the grading
service ($COURSEHUB_SETTINGS, mounted from the chart's ConfigMap) and the catalog baked into the
hub image, and warns when that catalog is not the one the values were rendered from.
"""

from __future__ import annotations

import logging
from typing import Any

from coursehub.platform.courses import Catalog, load_catalog
from coursehub.platform.environments import catalog_digest
from coursehub.platform.extensions import hub_extensions
from coursehub.platform.settings import Settings, load_settings

from .profiles import course_profile_list

log = logging.getLogger("coursehub.kube")

SPAWNER_CLASS = "coursehub.platform.kube.spawner.CourseKubeSpawner"


def configure_kube_spawner(c: Any, settings: Settings, catalog: Catalog) -> None:
    """KubeSpawner with course profiles; keeps a profile_list already set (z2jh's profileList)."""
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    if "profile_list" not in c.KubeSpawner:
        c.KubeSpawner.profile_list = course_profile_list(catalog)
    c.KubeSpawner.start_timeout = max(c.KubeSpawner.get("start_timeout", 0), settings.hub.start_timeout)


def merge_named(existing: list[dict], extra: list[dict], list_keys: tuple[str, ...] = ()) -> list[dict]:
    """`existing` (from the chart values) with `extra` merged in by name: a new name is appended;
    for a known one the values' keys win and list keys (scopes, services) are unioned."""
    out = [dict(e) for e in existing]
    by_name = {e.get("name"): e for e in out}
    for item in extra:
        have = by_name.get(item.get("name"))
        if have is None:
            out.append(dict(item))
            by_name[item.get("name")] = out[-1]
            continue
        for key, value in item.items():
            if key in list_keys:
                have[key] = list(dict.fromkeys([*have.get(key, []), *value]))
            else:
                have.setdefault(key, value)
    return out


def configure_extensions(c: Any, settings: Settings, catalog: Catalog) -> None:
    """The grading service's grants and user-server environment, and the textbooks service."""
    services: list[dict] = []
    roles: list[dict] = []
    before = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    for extension in hub_extensions():
        if extension.enabled(settings):
            extension.configure(c, settings, catalog, services, roles)
    if settings.textbook.enabled and any(course.textbook for course in catalog):
        from coursehub.platform.textbook.service import hub_service

        service, grant = hub_service(settings, port=0)
        services.append(service)
        roles.append({"name": "user", "scopes": ["self", *grant["scopes"]]})  # merged by name below
    current = c.JupyterHub.services if "services" in c.JupyterHub else []
    c.JupyterHub.services = merge_named(list(current), services)
    current_roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
    c.JupyterHub.load_roles = merge_named(list(current_roles), roles, list_keys=("scopes", "services", "users",
                                                                                  "groups"))
    # Extensions write Spawner.environment; z2jh's singleuser.extraEnv is KubeSpawner.environment,
    # which would hide it: merge ours in below the values' own keys.
    added = {k: v for k, v in (dict(c.Spawner.environment) if "environment" in c.Spawner else {}).items()
             if k not in before or before[k] is not v}
    kube_env = dict(c.KubeSpawner.environment) if "environment" in c.KubeSpawner else {}
    c.KubeSpawner.environment = {**added, **kube_env}


def configure(c: Any, custom: dict[str, Any] | None) -> tuple[Settings, Catalog]:
    custom = custom or {}
    settings = load_settings()
    catalog = load_catalog(settings.courses_dir)
    expected, actual = custom.get("catalogDigest"), catalog_digest(catalog)
    if expected and expected != actual:
        log.warning(
            "the courses in the hub image (%s: %s) are not the ones the Helm values were rendered from "
            "(%s): build the hub image from the same checkout as `coursehub helm-values`, then upgrade",
            settings.courses_dir, ", ".join(c.id for c in catalog), ", ".join(custom.get("courses", [])),
        )
    configure_kube_spawner(c, settings, catalog)
    try:
        from coursehub.platform.auth import configure_sign_in

        configure_sign_in(c, settings, catalog)
    except NotImplementedError as e:
        log.warning("sign-in is not configured by coursehub yet (%s); using hub.config from the values", e)
    configure_extensions(c, settings, catalog)
    return settings, catalog
