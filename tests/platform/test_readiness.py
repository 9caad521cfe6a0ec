"""A started server is reported ready as soon as its port accepts connections, not at the end of
the hub's back-off step; a server that exits while starting fails the start at once."""

from __future__ import annotations

import asyncio
import socket

import pytest
from support.net import free_port

from coursehub.platform.readiness import ServerExited, ServerNotListening, until_listening


class StartsListeningAt:
    """exit_status() of a server that binds its port when it is asked for the `n`th time."""

    def __init__(self, port: int, n: int, asynchronous: bool = False) -> None:
        self.port, self.n, self.calls, self.asynchronous = port, n, 0, asynchronous
        self.listener: socket.socket | None = None

    def __call__(self):
        self.calls += 1
        if self.calls == self.n:
            self.listener = socket.create_server(("127.0.0.1", self.port))
        if self.asynchronous:
            return self._none()
        return None

    async def _none(self) -> None:
        return None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_ready_at_the_first_check_after_the_port_is_bound(asynchronous):
    port = free_port()
    server = StartsListeningAt(port, 4, asynchronous)
    try:
        await until_listening("127.0.0.1", port, exit_status=server, timeout=30, interval=0.01, who="u1")
        assert server.calls == 4  # three refused tries, then the first one after the bind
    finally:
        server.close()


@pytest.mark.parametrize("status", [0, 3, 137])
async def test_a_server_that_exits_while_starting_fails_at_once(status):
    calls = []

    async def exited():
        calls.append(1)
        return None if len(calls) < 3 else status

    with pytest.raises(ServerExited, match=rf"server of u1 exited while starting \(exit status {status}\)"):
        await until_listening("127.0.0.1", free_port(), exit_status=exited, timeout=30, interval=0.01, who="u1")
    assert len(calls) == 3


async def test_a_server_that_never_listens_fails_the_start_once_at_the_timeout():
    """Not a TimeoutError, which JupyterHub would report as the whole start exceeding start_timeout;
    and raised, not left to the hub's own wait, which would wait the same time again."""
    calls = []
    with pytest.raises(ServerNotListening, match=r"server of u1 did not accept connections within 0.2 s") as e:
        await until_listening("127.0.0.1", free_port(), exit_status=lambda: calls.append(1), timeout=0.2,
                              interval=0.01, who="u1")
    assert not isinstance(e.value, TimeoutError) and len(calls) > 1


async def test_a_connect_that_hangs_is_bounded_and_the_timeout_holds(monkeypatch):
    """A connect that never completes (a dropped SYN) is given up per try; the overall timeout holds."""
    tries = []

    async def hang(host, port):
        tries.append(1)
        await asyncio.sleep(3600)

    monkeypatch.setattr(asyncio, "open_connection", hang)
    with pytest.raises(ServerNotListening):
        await asyncio.wait_for(until_listening("10.255.255.1", 9, exit_status=lambda: None, timeout=1.5,
                                               interval=0.01, who="u1"), 30)
    assert len(tries) >= 1
