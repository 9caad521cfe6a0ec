"""Wait until a just-started user server accepts connections, checking often and cheaply.

Why: after a spawner's `start()` returns, JupyterHub checks the server over HTTP with full-jitter
back-off (a random wait up to 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s between tries). A server that needs
2-3 s to import and bind is then found 0.5-2 s after it is ready, and up to 5 s when starts are slow:
time a student waits for nothing. Both spawners return from `start()` only once the server's port
accepts a TCP connection (a refused connect is a fraction of a millisecond); JupyterHub's first
check then succeeds at once. Jupyter Server binds its port when it is about to serve.

A server that is still not listening after `http_timeout` fails the start with its own message: the
hub's wait after `start()` would only wait `http_timeout` again for the same port, so the student
would learn of the failure twice as late.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


class ServerExited(RuntimeError):
    """The server stopped before it accepted a connection."""


class ServerNotListening(RuntimeError):
    """The server runs but did not accept a connection in time. Not a TimeoutError: JupyterHub would
    report that as the whole start exceeding `start_timeout`."""


async def until_listening(host: str, port: int, *, exit_status: Callable[[], Awaitable[int | None] | int | None],
                          timeout: float, interval: float, who: str) -> None:
    """Return once `host:port` accepts a connection, checking every `interval` seconds.
    `exit_status()` (a process's poll, a spawner's poll) is asked before each try: a status other
    than None raises ServerExited at once; no connection within `timeout` seconds raises
    ServerNotListening."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        status = exit_status()
        if inspect.isawaitable(status):
            status = await status
        if status is not None:
            raise ServerExited(f"The server of {who} exited while starting (exit status {status}); "
                               "its output is in the hub's log")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), max(interval * 10, 1.0))
        except (OSError, TimeoutError):
            await asyncio.sleep(interval)
            continue
        writer.close()
        return
    raise ServerNotListening(f"The server of {who} did not accept connections within {timeout:g} s of starting; "
                             "its output is in the hub's log")
