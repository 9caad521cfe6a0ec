"""Hub-side setup inside the z2jh hub pod (called from the `hub.extraConfig` snippet that
`coursehub helm-values` writes).

z2jh's own `jupyterhub_config.py` already configures the hub's network, database, proxy and
services from the chart values, so this applies only what is ours: the course spawner, and the
identity part of the hub config (`platform/auth.py` `configure_sign_in`) (authenticator, groups). It reads the same settings file
as the grading service and the scaler ($COURSEHUB_SETTINGS, mounted from the chart's ConfigMap)
and the course catalog baked into the hub image, and warns when that catalog is not the one the
values were rendered from.
"""

from __future__ import annotations

import logging
from typing import Any

from coursehub.platform.courses import Catalog, load_catalog
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


def configure(c: Any, custom: dict[str, Any] | None) -> tuple[Settings, Catalog]:
    custom = custom or {}
    settings = load_settings()
    catalog = load_catalog(settings.courses_dir)
    expected, actual = custom.get("catalogDigest"), catalog.digest()
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
    return settings, catalog
