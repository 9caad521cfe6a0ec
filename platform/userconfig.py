"""Jupyter config folders for the two kinds of user server, 'student' and 'staff': which nbgrader
parts each gets, and the nbgrader config (the coursehub exchange) from the hub extensions. Written by
the local hub at start and by `coursehub helm-values` for Kubernetes (a ConfigMap per role).
"""

from __future__ import annotations

import json
from pathlib import Path

from .extensions import hub_extensions
from .settings import Settings

#: nbgrader JupyterLab plugins and server extensions that only course staff need.
STAFF_ONLY_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:create-assignment",
)
#: JupyterLab plugins no one gets on a managed platform: the announcements plugin asks every new
#: user whether to fetch "official Jupyter news" and offers update checks, which are IT's business.
MANAGED_OFF_LAB_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)
#: JupyterLab's build check: on every page load Lab asks its server whether the installed
#: extensions need a rebuild (`/lab/api/build`), about 0.5 s of the user server's CPU while the
#: student waits for the notebook, and it offers a rebuild. On a managed image no one can rebuild Lab
#: (extensions come prebuilt with the image), so neither is asked.
NO_BUILD_PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}
STAFF_ONLY_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
#: coursehub's Assignments panel server side (exchange calls off the event loop, readable errors,
#: late warning) replaces nbgrader's, on the same routes (grading/exchange/panel.py).
PANEL_EXTENSION = "coursehub.grading.exchange.panel"
#: One kernel per notebook while its session is being created (the hub pre-starts the assignment's).
ONE_SESSION_EXTENSION = "coursehub.platform.one_session"
#: /api/nbconvert (Lab asks on every page load) worked out once per server instead of per request.
NBCONVERT_FORMATS_EXTENSION = "coursehub.platform.nbconvert_formats"
REPLACED_SERVER_EXTENSIONS = ("nbgrader.server_extensions.assignment_list",)
#: The formgrader runs in an iframe of the staff's own Lab: their server may be framed by itself
#: (Jupyter Server's default; JupyterHub's single-user default is 'none', which left it blank).
STAFF_CSP = "frame-ancestors 'self'"



def write_role_configs(root: Path, settings: Settings) -> None:
    """Jupyter config folders for the two kinds of user server: 'student' and 'staff'.

    They are put on each server's JUPYTER_CONFIG_PATH, ahead of the installed defaults: students
    don't get the formgrader or course list; both get the coursehub exchange (nbgrader_config.py).
    """
    for role in ("student", "staff"):
        folder = root / role
        (folder / "labconfig").mkdir(parents=True, exist_ok=True)
        staff = role == "staff"
        off = MANAGED_OFF_LAB_PLUGINS + (() if staff else STAFF_ONLY_LAB_PLUGINS)
        page_config = {"disabledExtensions": {p: True for p in off}, **NO_BUILD_PAGE_CONFIG}
        server_config = {"ServerApp": server_app_config(staff=staff)}
        _write_if_changed(folder / "labconfig" / "page_config.json", json.dumps(page_config, indent=2))
        _write_if_changed(folder / "jupyter_server_config.json", json.dumps(server_config, indent=2))
        _write_if_changed(folder / "nbgrader_config.py", nbgrader_config(settings, staff=staff))


def server_app_config(*, staff: bool) -> dict:
    """The `ServerApp` section of a role's jupyter_server_config.json."""
    extensions = {e: staff for e in STAFF_ONLY_SERVER_EXTENSIONS}
    extensions.update({e: False for e in REPLACED_SERVER_EXTENSIONS})
    extensions[PANEL_EXTENSION] = True
    extensions[ONE_SESSION_EXTENSION] = True
    extensions[NBCONVERT_FORMATS_EXTENSION] = True
    config: dict = {"jpserver_extensions": extensions}
    if staff:
        config["tornado_settings"] = {"headers": {"Content-Security-Policy": STAFF_CSP}}
    return config


def nbgrader_config(settings: Settings, *, staff: bool) -> str:
    """nbgrader configuration for user servers, from the hub extension that provides one (the grading
    service's: the coursehub exchange plugin)."""
    for extension in hub_extensions():
        text = extension.nbgrader_config(settings, staff=staff)
        if text:
            return text
    return "# Written by coursehub; changes are overwritten at hub start.\n"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
