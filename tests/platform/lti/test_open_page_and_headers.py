"""The open page's query checks, where its server-side requests go, and the security headers of
every handler coursehub adds to the hub."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders

from coursehub.platform.lti.open_page import OpenArgs, internal_server_url, parse_open_args
from coursehub.platform.lti.targets import staff_page_path
from coursehub.platform.lti.web import SecurityHeaders, public_origin


def args(**query: str):
    return lambda name, default="": query.get(name, default)


@pytest.mark.parametrize("query", [
    {"course": "demo-101", "tries": "abc"}, {"course": "demo-101", "tries": "-1"},
    {"course": "demo-101", "tries": "1e9"}, {"course": "demo-101", "tries": "9" * 50},
    {"course": "demo-101", "tries": "١"},  # a non-ASCII digit
    {"course": "demo-101", "tries": " 1"}, {"course": "demo-101", "tries": "0x1"},
    {"course": ""}, {"course": "../etc"}, {"course": "x" * 5000}, {"course": "Demo 101"},
    {"course": "demo-101", "assignment": "../../x"}, {"course": "demo-101", "assignment": "a" * 5000},
    {"course": "demo-101", "textbook": "/etc/passwd"}, {"course": "demo-101", "textbook": "a b"},
])
def test_bad_query_is_400(query):
    with pytest.raises(web.HTTPError) as e:
        parse_open_args(args(**query))
    assert e.value.status_code == 400


def test_good_query():
    assert parse_open_args(args(course="demo-101", assignment="ps1", tries="1")) == \
        OpenArgs("demo-101", "ps1", "", 1)
    assert parse_open_args(args(course="demo-101", textbook="01-welcome", tries="")) == \
        OpenArgs("demo-101", "", "01-welcome", 0)


@pytest.mark.parametrize(("base_url", "course", "expected"), [
    ("/", "demo-101", "/services/grading/course/demo-101/staff"),
    ("/jh/", "demo-101", "/jh/services/grading/course/demo-101/staff"),
    ("/a/b", "x", "/a/b/services/grading/course/x/staff"),
    ("/", "a/../b?c#d", "/services/grading/course/a%2F..%2Fb%3Fc%23d/staff"),  # never leaves the page's path
])
def test_staff_land_on_the_grading_services_staff_page(base_url, course, expected):
    assert staff_page_path(base_url, course) == expected


def test_the_staff_page_path_is_the_grading_services_route():
    """The hub side may not import the grading service; both must still name the same page."""
    import re

    from coursehub.grading.dashboard.pages import page_handlers
    from coursehub.grading.service.hub import PREFIX

    path = staff_page_path("/", "demo-101")
    assert path.startswith(PREFIX)
    rest = path[len(PREFIX):]
    assert any(re.fullmatch(pattern.lstrip("/"), rest) and handler.__name__ == "StaffCoursePage"
               for pattern, handler, *_ in page_handlers())


def test_server_side_requests_use_the_spawners_address_not_the_request():
    spawner = SimpleNamespace(server=SimpleNamespace(url="http://127.0.0.1:45678/user/alice/"))
    assert internal_server_url(spawner) == "http://127.0.0.1:45678/user/alice/"
    with pytest.raises(web.HTTPError):
        internal_server_url(SimpleNamespace(server=None))


def test_open_handler_never_reads_the_host_header():
    import inspect

    from coursehub.platform.lti import open_page

    source = inspect.getsource(open_page)
    for header in ("request.host", "X-Forwarded", "request.protocol", "full_url", "Origin"):
        assert header not in source


@pytest.mark.parametrize("host", ["evil.example:80", "127.0.0.1:22", "169.254.169.254"])
def test_public_origin_is_configuration_when_configured(host):
    request = SimpleNamespace(host=host, protocol="http", headers=HTTPHeaders({"X-Forwarded-Proto": "https"}))
    auth = SimpleNamespace(public_url="https://hub.example.edu/")
    assert public_origin(auth, request) == "https://hub.example.edu"


class _Base:
    def __init__(self, configured: dict):
        self.configured = configured
        self._headers = HTTPHeaders()

    def set_default_headers(self):  # what JupyterHub's BaseHandler does
        for k, v in self.configured.items():
            self._headers[k] = v
        if "Content-Security-Policy" not in self.configured:
            self._headers["Content-Security-Policy"] = "frame-ancestors 'none'; report-uri /hub/security/csp-report"

    def set_header(self, k, v):
        self._headers[k] = v


class _Page(SecurityHeaders, _Base):
    pass


@pytest.mark.parametrize(("configured", "xfo", "ancestors"), [
    ({}, "DENY", "frame-ancestors 'none'"),
    ({"Content-Security-Policy": "frame-ancestors 'self'"}, "SAMEORIGIN", "frame-ancestors 'self'"),
    ({"Content-Security-Policy": "default-src 'self'"}, "DENY", "frame-ancestors 'none'"),
    ({"Content-Security-Policy": "frame-ancestors https://canvas.example.edu"}, None, "https://canvas.example.edu"),
    ({"X-Frame-Options": "SAMEORIGIN"}, "SAMEORIGIN", "frame-ancestors 'none'"),
])
def test_security_headers(configured, xfo, ancestors):
    page = _Page(configured)
    page.set_default_headers()
    assert page._headers["X-Content-Type-Options"] == "nosniff"
    assert page._headers.get("X-Frame-Options") == xfo
    assert ancestors in page._headers["Content-Security-Policy"]


def test_every_coursehub_handler_has_the_security_headers():
    from coursehub.platform.auth import CoursehubAuthenticator
    from coursehub.platform.local_lms.handlers import local_lms_handlers

    auth = CoursehubAuthenticator(platforms=[], state_dir="/nonexistent")
    auth.__dict__["tool_key"] = None  # get_handlers would create the key
    handlers = [h for _, h in CoursehubAuthenticator.get_handlers(auth, None)] + \
        [h for _, h in local_lms_handlers()]
    assert len(handlers) >= 10
    for handler in handlers:
        assert issubclass(handler, SecurityHeaders), handler


def test_handlers_from_other_packages_get_the_headers_too():
    from jupyterhub.handlers import BaseHandler

    from coursehub.platform.auth import with_security_headers

    class Foreign(BaseHandler):
        pass

    wrapped = with_security_headers(Foreign)
    assert issubclass(wrapped, SecurityHeaders) and issubclass(wrapped, Foreign)
    assert with_security_headers(wrapped) is wrapped
