"""fetch_for_launch through the shared HTTP client, against a fake user server on 127.0.0.1."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from coursehub.grading.exchange import launch


class Contents(web.RequestHandler):
    def get(self, path: str) -> None:
        state = self.application.settings["state"]
        state["seen"].append(("GET", path, self.request.headers.get("Authorization")))
        self.set_status(200 if path in state["folders"] else state["missing_status"])
        self.write({})


class Fetch(web.RequestHandler):
    def post(self) -> None:
        state = self.application.settings["state"]
        state["seen"].append(("POST", self.get_body_argument("assignment_id"), self.request.headers.get("Authorization")))
        self.write(json.dumps(state["answer"]) if state["answer"] is not None else "x" * (2 * launch.MAX_BYTES))


@pytest.fixture
async def user_server():
    state = {"seen": [], "folders": set(), "missing_status": 404, "answer": {"success": True}}
    sock, port = bind_unused_port()
    srv = HTTPServer(web.Application([(r"/user/ann/api/contents/(.*)", Contents),
                                      (r"/user/ann/assignments/fetch", Fetch)], state=state))
    srv.add_sockets([sock])
    yield state, f"http://127.0.0.1:{port}/user/ann"
    srv.stop()


def request_for(url: str, token: str | None = "t0k") -> SimpleNamespace:
    return SimpleNamespace(username="ann", course=SimpleNamespace(id="demo-101"), assignment="ps1",
                           server_url=url, token=token)


async def test_fetches_once_and_never_over_existing_work(user_server):
    state, url = user_server
    assert await launch.fetch_for_launch(request_for(url)) == "demo-101/ps1"
    assert [s[0] for s in state["seen"]] == ["GET", "POST"]
    assert all(s[2] == "token t0k" for s in state["seen"])
    state["seen"].clear()
    state["folders"].add("demo-101/ps1")
    assert await launch.fetch_for_launch(request_for(url)) == "demo-101/ps1"
    assert [s[0] for s in state["seen"]] == ["GET"]  # already there: no fetch


async def test_refusals_and_failures_give_none(user_server):
    state, url = user_server
    assert await launch.fetch_for_launch(request_for(url, token=None)) is None
    state["answer"] = {"success": False, "value": "not released"}
    assert await launch.fetch_for_launch(request_for(url)) is None
    state["answer"] = None  # an answer over the cap
    assert await launch.fetch_for_launch(request_for(url)) is None
    state["missing_status"] = 403
    state["seen"].clear()
    assert await launch.fetch_for_launch(request_for(url)) is None
    assert [s[0] for s in state["seen"]] == ["GET"]
    sock, port = bind_unused_port()
    sock.close()
    assert await launch.fetch_for_launch(request_for(f"http://127.0.0.1:{port}/user/ann")) is None
