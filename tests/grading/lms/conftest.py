"""Fixtures for the LMS sync tests: the fake LMS's AGS/NRPS/token endpoints on loopback, a tool key,
a controllable clock, an outbox database."""

from __future__ import annotations

import pytest
from fakelms.ags import AgsState, ags_handlers
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from support.lms_doubles import StaticServices
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from coursehub.grading.lms.httpclient import Http
from coursehub.grading.lms.models import Base
from coursehub.grading.lms.records import LaunchServices, ServiceRegistration
from coursehub.grading.lms.services import ServiceClient
from coursehub.grading.lms.tokens import TokenClient, ToolKey
from coursehub.platform.lti.keys import generate_key_pair

CLIENT_ID = "coursehub-tool"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class CountingHttp(Http):
    """Records every request made (method, url) before it goes out."""

    def __init__(self) -> None:
        super().__init__(connect_timeout=5, request_timeout=10)
        self.calls: list[tuple[str, str]] = []

    async def request(self, method, url, **kw):  # noqa: ANN001
        self.calls.append((method, url))
        return await super().request(method, url, **kw)


@pytest.fixture(scope="session")
def tool_pair():
    return generate_key_pair()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def lms(tool_pair, clock):
    state = AgsState(tool_jwk=tool_pair.public_jwk(), client_id=CLIENT_ID, clock=clock)
    sock, port = bind_unused_port()
    server = HTTPServer(web.Application(ags_handlers(state)))
    server.add_sockets([sock])
    state.base_url = f"http://127.0.0.1:{port}"
    yield state
    server.stop()
    await server.close_all_connections()


@pytest.fixture
def platform(lms):
    return ServiceRegistration(name="fake", issuer=lms.base_url, token_url=lms.token_url())


@pytest.fixture
def http():
    return CountingHttp()


@pytest.fixture
def client(tool_pair, http, clock):
    return ServiceClient(TokenClient(ToolKey(tool_pair.private_pem, tool_pair.kid), http, clock=clock))


@pytest.fixture
def sessions(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'grading.sqlite'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def launch(platform, lms, student: str, course: str = "c1", context: str = "ctx1", **over) -> LaunchServices:
    fields = dict(platform=platform, client_id=CLIENT_ID, course_id=course, username=student,
                  lti_user_id=f"sub-{student}", context_id=context, lineitems_url=lms.lineitems_url(context),
                  nrps_url=lms.memberships_url(context))
    fields.update(over)
    return LaunchServices(**fields)


@pytest.fixture
def students(platform, lms):
    return StaticServices([launch(platform, lms, s) for s in ("ann", "bob", "cy", "dee")])


def serve_hub_records_lms(tmp_path, *, course_dir: str | None = "c1"):  # noqa: ANN201
    """The fake LMS on loopback plus the settings the grading side reads the hub's records with:
    (lms, server, settings). The tool key is where the hub generates it on first start."""
    from types import SimpleNamespace

    from coursehub.grading.lms.runtime import outbox_sessions
    from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path

    state = tmp_path / "state"
    key = load_or_create_key_pair(tool_key_path(state))
    if course_dir:
        (state / "course-dirs" / course_dir).mkdir(parents=True)  # the service makes it at start
    lms = AgsState(tool_jwk=key.public_jwk(), client_id="tool-9")
    sock, port = bind_unused_port()
    server = HTTPServer(web.Application(ags_handlers(lms)))
    server.add_sockets([sock])
    lms.base_url = f"http://127.0.0.1:{port}"
    platform = SimpleNamespace(name="campus", issuer=lms.base_url, token_url=lms.token_url(),
                               auth_login_url=f"{lms.base_url}/auth", jwks_url=f"{lms.base_url}/jwks")
    settings = SimpleNamespace(state_dir=state, local=False, hub=SimpleNamespace(db_url=None), courses_dir=None,
                               auth=SimpleNamespace(lti=SimpleNamespace(platforms=[platform], local_lms=False)),
                               grading_db_url=lambda: f"sqlite:///{tmp_path / 'grading.sqlite'}")
    Base.metadata.create_all(outbox_sessions(settings).kw["bind"])
    return lms, server, settings
