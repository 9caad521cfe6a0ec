"""Fixtures for the exchange tests: test courses, a grading service on a FakeHub, and "actors"
(an instructor or a student) that run the stock nbgrader apps against either exchange backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.exchange import MEMBERS, Backend, CoursehubBackend, FilesystemBackend, make_courses
from support.fakehub import FakeHub
from support.grading import GradingService, running_service
from support.venv import venv_path


@pytest.fixture(scope="module")
def courses_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_courses(tmp_path_factory.mktemp("courses"))


@pytest.fixture(scope="module")
def fakehub() -> Iterator[FakeHub]:
    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def tokens(fakehub: FakeHub) -> dict[str, str]:
    return {name: fakehub.add_user(name, groups) for name, groups in MEMBERS.items()}


# nbgrader's gradebook runs the `alembic` command: the virtualenv's bin must be on PATH.
os.environ["PATH"] = venv_path()

LIMITS = {"max_file_bytes": 300_000, "max_submission_bytes": 600_000}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, courses_dir: Path, fakehub: FakeHub,
                   tokens: dict) -> Iterator[GradingService]:
    """One grading service per module; tests keep apart by using their own assignment ids (`aid`)."""
    with running_service(tmp_path_factory.mktemp("svc"), courses_dir, fakehub, **LIMITS) as svc:
        yield svc


@pytest.fixture(params=["filesystem", "coursehub"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "filesystem":
        return FilesystemBackend(tmp_path)
    svc = request.getfixturevalue("service")
    return CoursehubBackend(tmp_path, svc, request.getfixturevalue("tokens"))




_counter = iter(range(1, 10**6))


@pytest.fixture
def aid() -> str:
    """A fresh assignment id, so tests sharing a service never see each other's work."""
    return f"a{next(_counter)}"
