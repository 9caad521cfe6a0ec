"""A Jupyter Server extension for user servers: requests that create a session for the same notebook
while one is being created share that creation, so a notebook gets one kernel.

Why: the hub starts the assignment notebook's kernel while JupyterLab loads (platform/lti/opening.py
`prestart_kernel`), and JupyterLab asks for a session for the same notebook when it opens it.
Jupyter Server checks for an existing session and creates one if there is none, but a session whose
kernel is still starting is not there yet: without this, the second request started a second kernel.

Loaded through `jpserver_extensions` (platform/userconfig.py); a server without it works as before.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

CreateSession = Callable[..., Awaitable[dict]]


def share_pending_creations(create_session: CreateSession) -> CreateSession:
    """`SessionManager.create_session` such that a call for a notebook path that is being created
    waits for that creation and returns its session. Other calls (no path, another type, a given
    kernel id) go through unchanged; a failed creation fails its waiters, and the next call retries."""
    pending: dict[str, asyncio.Future] = {}

    @functools.wraps(create_session)
    async def create(path: str | None = None, name: str | None = None, type: str | None = None,  # noqa: A002
                     kernel_name: str | None = None, kernel_id: str | None = None) -> dict:
        if not path or type != "notebook" or kernel_id is not None:
            return await create_session(path=path, name=name, type=type, kernel_name=kernel_name,
                                        kernel_id=kernel_id)
        running = pending.get(path)
        if running is not None:
            return await asyncio.shield(running)
        running = pending[path] = asyncio.ensure_future(
            create_session(path=path, name=name, type=type, kernel_name=kernel_name, kernel_id=kernel_id))
        try:
            return await asyncio.shield(running)
        finally:
            if pending.get(path) is running:
                del pending[path]

    return create


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "coursehub.platform.one_session"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    manager = serverapp.session_manager
    manager.create_session = share_pending_creations(manager.create_session)
    serverapp.log.info("coursehub: one kernel per notebook while its session is being created")
