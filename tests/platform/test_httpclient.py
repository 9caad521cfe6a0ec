"""The shared async HTTP client and its callers, against a real tornado server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from coursehub.platform import httpclient
from coursehub.platform.httpclient import ResponseTooLarge, request


class Hang(web.RequestHandler):
    async def get(self) -> None:
        await self.application.settings["release"].wait()  # answers only when the test is over
        self.write("late")


class Big(web.RequestHandler):
    def get(self) -> None:
        size = int(self.get_argument("n"))
        for _ in range(size // 1024):
            self.write(b"x" * 1024)
            self.flush()


class Status(web.RequestHandler):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        self.add_header("Link", '<https://a/?page=2>; rel="next"')
        self.add_header("Link", '<https://a/?page=9>; rel="last"')
        self.write({"code": int(code)})

    def post(self, code: str) -> None:
        self.set_status(int(code))
        self.write({"echo": self.request.body.decode()})


class Redirect(web.RequestHandler):
    def get(self) -> None:
        self.redirect("/status/200")


@pytest.fixture
async def server():
    release = asyncio.Event()
    sock, port = bind_unused_port()  # 127.0.0.1
    srv = HTTPServer(web.Application([(r"/hang", Hang), (r"/big", Big), (r"/status/(\d+)", Status),
                                      (r"/redirect", Redirect)], release=release))
    srv.add_sockets([sock])
    yield f"http://127.0.0.1:{port}"
    release.set()
    srv.stop()
    await srv.close_all_connections()


async def test_non_2xx_is_an_answer_with_its_body_and_headers(server):
    r = await request("GET", f"{server}/status/503")
    assert (r.status, r.ok, json.loads(r.body)) == (503, False, {"code": 503})
    assert r.header("link").count("rel=") == 2  # repeated Link headers are kept, joined
    r = await request("POST", f"{server}/status/201", body="a=1")
    assert (r.status, r.ok, json.loads(r.body)) == (201, True, {"echo": "a=1"})


async def test_a_server_that_never_answers_times_out(server):
    r = await request("GET", f"{server}/hang", connect_timeout=1, request_timeout=0.3)
    assert r.status == httpclient.NO_RESPONSE and "Timeout" in r.error


async def test_connection_refused_is_status_599():
    sock, port = bind_unused_port()
    sock.close()  # nothing listens there now
    r = await request("GET", f"http://127.0.0.1:{port}/")
    assert r.status == 599 and r.error


async def test_a_body_over_the_cap_is_refused_with_a_clear_error(server):
    assert len((await request("GET", f"{server}/big?n=8192", max_bytes=8192)).body) == 8192
    with pytest.raises(ResponseTooLarge) as e:
        await request("GET", f"{server}/big?n=65536", max_bytes=8192)
    assert "larger than 8192 bytes" in str(e.value) and e.value.max_bytes == 8192


async def test_redirects_are_not_followed_unless_asked(server):
    assert (await request("GET", f"{server}/redirect")).status == 302
    assert (await request("GET", f"{server}/redirect", follow_redirects=True)).status == 200


async def test_lms_http_turns_an_oversized_body_into_an_error_response(server):
    from coursehub.grading.lms.httpclient import Http

    r = await Http(max_bytes=4096).request("GET", f"{server}/big?n=65536")
    assert r.status == 599 and "larger than 4096 bytes" in r.error
    assert (await Http().request("GET", f"{server}/status/404")).status == 404


async def test_jwks_and_registration_keep_their_own_caps_and_errors(server, monkeypatch):
    from coursehub.platform.lti import dynamic_registration as dr
    from coursehub.platform.lti import jwks

    monkeypatch.setattr(jwks, "MAX_JWKS_BYTES", 4096)
    with pytest.raises(jwks.JwksError, match="too large"):
        await jwks.fetch_url(f"{server}/big?n=65536")
    with pytest.raises(jwks.JwksError, match="HTTP 500"):
        await jwks.fetch_url(f"{server}/status/500")

    policy = dr.UrlPolicy(allow_loopback=True)
    monkeypatch.setattr(dr, "MAX_BODY", 4096)
    with pytest.raises(dr.RegistrationRefused) as e:
        await dr.fetch_configuration(policy, f"{server}/big?n=65536")
    assert e.value.reason == "too_large"
    with pytest.raises(dr.RegistrationRefused) as e:
        await dr.fetch_configuration(policy, f"{server}/redirect")  # no redirects for the SSRF guard
    assert (e.value.reason, e.value.message) == ("platform_error", "The LMS's OpenID configuration answered HTTP 302.")
    with pytest.raises(dr.RegistrationRefused) as e:  # the guard runs before any request
        await dr.fetch_configuration(dr.UrlPolicy(), f"{server}/status/200")
    assert e.value.reason == "not_https"
