"""The load-test client waits on the hub's spawn-progress stream, as the pending page's JavaScript
does, instead of reloading the pending page on a timer (a timer adds up to its period to every
measured launch and loads the hub with page renders)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coursehub.loadtest.hubclient import HubSession, StepFailed


class FakeHub:
    """A hub whose server becomes ready `delay` seconds after the first progress request."""

    def __init__(self, delay: float, progress_status: int = 200, final: str = '{"ready": true, "progress": 100}'):
        self.delay, self.progress_status, self.final = delay, progress_status, final
        self.ready = threading.Event()
        self.failed = threading.Event()
        self.pending_gets = 0
        self.progress_gets = 0
        self.xsrf_seen: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/hub/spawn-pending/ann":
                    hub.pending_gets += 1
                    if hub.ready.is_set():
                        return self._send(302, b"", location="/user/ann/lab")
                    if hub.failed.is_set():  # JupyterHub's page for a failed spawn
                        return self._send(500, b"<html>Spawn failed</html>")
                    return self._send(200, b"<html>your server is starting</html>",
                                      cookie="_xsrf=tok; Path=/hub/")
                if self.path == "/hub/api/users/ann/server/progress":
                    hub.progress_gets += 1
                    hub.xsrf_seen.append(self.headers.get("X-XSRFToken", ""))
                    if hub.progress_status != 200:
                        return self._send(hub.progress_status, b"{}")
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(b':keepalive\n\ndata: {"progress": 50, "message": "starting"}\n\n')
                    self.wfile.flush()
                    time.sleep(hub.delay)
                    (hub.ready if '"ready"' in hub.final else hub.failed).set()
                    self.wfile.write(f"data: {hub.final}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(5)  # a hub keeps the stream open; the client must not wait for its end
                    return None
                if self.path == "/user/ann/lab":
                    return self._send(200, b'<script id="jupyter-config-data">{}</script>')
                return self._send(404, b"")

            def _send(self, status: int, body: bytes, location: str = "", cookie: str = "") -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                if cookie:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _open(hub: FakeHub) -> tuple[str, float]:
    s = HubSession(hub.url, platform=None, sub="s1")  # type: ignore[arg-type] - no launch here
    t0 = time.monotonic()
    url = s.open(f"{hub.url}/hub/spawn-pending/ann", time.monotonic() + 30)
    return url, time.monotonic() - t0


def test_ready_event_ends_the_wait_at_once() -> None:
    hub = FakeHub(delay=0.3)
    try:
        url, took = _open(hub)
    finally:
        hub.close()
    assert url == f"{hub.url}/user/ann/"
    assert hub.progress_gets == 1
    assert hub.pending_gets == 2  # the page once before, once after the ready event: no timer reloads
    assert hub.xsrf_seen == ["tok"]  # the hub's XSRF check for cookie-authenticated API calls
    assert took < 4  # the stream stays open for 5 s more: the client left on the event


def test_a_hub_without_the_stream_is_polled() -> None:
    hub = FakeHub(delay=0, progress_status=404)
    threading.Timer(1.2, hub.ready.set).start()
    try:
        url, _ = _open(hub)
    finally:
        hub.close()
    assert url == f"{hub.url}/user/ann/"
    assert hub.pending_gets >= 3  # fell back to reloading the page
    assert hub.progress_gets >= 2


def test_a_failed_spawn_is_reported_not_waited_for() -> None:
    hub = FakeHub(delay=0.1, final='{"failed": true, "message": "Spawn failed"}')
    try:
        with pytest.raises(StepFailed, match="HTTP 500 at /hub/spawn-pending/<name>"):
            _open(hub)
    finally:
        hub.close()
    assert hub.progress_gets == 1
