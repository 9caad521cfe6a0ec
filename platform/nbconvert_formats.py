"""A Jupyter Server extension for user servers: `/api/nbconvert` (the export formats JupyterLab lists
under File > Save and Export Notebook As) worked out once per server, in a worker thread.

Why: JupyterLab asks for the formats on every page load once a notebook opens (each reload, each new
tab), and Jupyter Server's handler builds every exporter class again for each request: 0.45-0.9 s of
the server's CPU here (nbconvert reads every installed distribution's entry points once per
exporter), in threads that hold the GIL against the server's other requests, the notebook's kernel
websocket among them. Here the first request works the formats out, requests that come meanwhile
share that work, and later ones get the answer at once (3-4 ms).

The answer is Jupyter Server's, computed the same way. An exporter installed while the server runs
is listed after the server restarts; JupyterLab, which asks once per page, already behaves so.
Loaded through `jpserver_extensions` (platform/userconfig.py); a server without it works as before.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.services.nbconvert.handlers import NbconvertRootHandler
from jupyter_server.utils import url_path_join
from tornado import web

#: The formats, once worked out in this process; the computation under way, if any.
_formats: dict[str, dict] | None = None
_pending: asyncio.Future | None = None


def compute_formats() -> dict[str, dict]:
    """{exporter name: {"output_mimetype": ...}}, as Jupyter Server's handler answers. Blocking: it
    imports nbconvert and loads every exporter class (ImportError without nbconvert)."""
    from nbconvert.exporters import base

    formats: dict[str, dict] = {}
    for name in base.get_export_names():
        try:
            exporter = base.get_exporter(name)
        except ValueError:  # its distribution went away meanwhile (as Jupyter Server skips it)
            continue
        formats[name] = {"output_mimetype": exporter.output_mimetype}
    return formats


async def export_formats() -> dict[str, dict]:
    """The formats: worked out in a worker thread by the first caller, shared by callers that come
    while it runs, kept for later ones. A failure is not kept: the next caller tries again."""
    global _formats, _pending
    if _formats is not None:
        return _formats
    loop = asyncio.get_running_loop()
    if _pending is None or _pending.get_loop() is not loop:
        _pending = loop.run_in_executor(None, compute_formats)
    running = _pending
    try:
        formats = await asyncio.shield(running)
    except Exception:
        if _pending is running:
            _pending = None
        raise
    _formats = formats
    return formats


class NbconvertFormatsHandler(NbconvertRootHandler):
    """GET /api/nbconvert, with Jupyter Server's authentication and authorization ("nbconvert")."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            formats = await export_formats()
        except ImportError as e:
            raise web.HTTPError(500, f"Could not import nbconvert: {e}") from e
        self.finish(json.dumps(formats))


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "coursehub.platform.nbconvert_formats"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Route /api/nbconvert here: an extension's routes are matched before the server's own."""
    webapp = serverapp.web_app
    webapp.add_handlers(".*$", [(url_path_join(webapp.settings["base_url"], "api/nbconvert"), NbconvertFormatsHandler)])
    serverapp.log.info("coursehub: /api/nbconvert worked out once per server")
