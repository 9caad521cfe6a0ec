"""Submissions the load test sends: valid uploads of the requested size, each one different."""

from __future__ import annotations

import json

from coursehub.grading.archive import UploadLimits, read_archive
from coursehub.loadtest.exchange import notebook_template, unique_archive


def test_unique_archives_are_valid_notebooks_of_the_size() -> None:
    template = notebook_template(200_000)
    a, b = unique_archive(template), unique_archive(template)
    assert a != b and len(a) == len(b) == len(template)
    for archive in (a, b):
        files = read_archive(archive, UploadLimits(2**30, 2**30, 10))
        assert list(files) == ["loadtest.ipynb"]
        assert 190_000 <= len(files["loadtest.ipynb"]) <= 204_000  # about the size asked for
        nb = json.loads(files["loadtest.ipynb"])
        assert "LOADTEST-UNIQUE" not in "".join(nb["cells"][0]["source"])


def test_submit_reports_what_the_service_answered(tmp_path) -> None:
    """The lean client: the id on 201, the service's message on a refusal a person can act on, and
    failures by kind (connection refused, no answer in time)."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from coursehub.loadtest.exchange import Exchange
    from coursehub.loadtest.hubclient import StepFailed

    seen: list[tuple[str, str, int]] = []
    answers = {"ok": (201, {"id": 7}), "bad": (422, {"error": "p1.ipynb is not a notebook"}),
               "down": (503, {"error": "restarting"})}

    class Service(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Authorization"], len(body)))
            status, payload = answers[self.headers["Authorization"].split()[1]]
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ex = Exchange("http://unused", "c1", "a1", service_url=f"http://127.0.0.1:{server.server_port}/services/grading/")
        assert ex.submit("ok", b"x" * 5000, "u1", timeout=10) == 7
        assert seen == [("/services/grading/api/courses/c1/assignments/a1/submissions", "token ok", 5000)]
        with pytest.raises(StepFailed, match=r"submit: HTTP 422 \(p1.ipynb is not a notebook\)"):
            ex.submit("bad", b"x", "u2", timeout=10)
        with pytest.raises(StepFailed, match=r"^submit: HTTP 503$"):  # a 5xx's text is not shown
            ex.submit("down", b"x", "u3", timeout=10)
    finally:
        server.shutdown()
        server.server_close()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(StepFailed, match="connection failed"):
        Exchange("http://x", "c1", "a1", service_url=f"http://127.0.0.1:{port}/").submit("t", b"x", "u", timeout=5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        with pytest.raises(StepFailed, match="timed out"):
            Exchange("http://x", "c1", "a1", service_url=f"http://127.0.0.1:{silent.getsockname()[1]}/").submit(
                "t", b"x", "u", timeout=0.5)
    finally:
        silent.close()
