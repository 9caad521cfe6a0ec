"""One real hub and one fake LMS per test module, with two courses linked to the fake LMS."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fakelms import running_fake_lms
from support.hub import deep_merge, running_hub

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.lti.identity import username_candidates
from coursehub.platform.lti.store import LtiStore

PLATFORM = "fakelms"


def make_courses(root: Path) -> Path:
    """demo-101 (copied, linked to the fake LMS too) and data-201 (a second, minimal course)."""
    courses = root / "courses"
    demo = courses / "demo-101"
    shutil.copytree(SOURCE_ROOT / "courses" / "demo-101", demo)
    # graded in the platform's environment: building demo-101's own is tested in tests/integration/environments
    shutil.rmtree(demo / "environment", ignore_errors=True)
    spec = yaml.safe_load((demo / "course.yaml").read_text())
    spec["lti"].append({"platform": PLATFORM, "deployment_id": "dep-1", "context_id": "ctx-101"})
    (demo / "course.yaml").write_text(yaml.safe_dump(spec))
    second = courses / "data-201"
    second.mkdir()
    (second / "course.yaml").write_text(yaml.safe_dump({
        "id": "data-201", "title": "Data 201",
        "lti": [{"platform": PLATFORM, "deployment_id": "dep-1", "context_id": "ctx-201"}],
    }))
    return courses


@contextmanager
def lti_hub(root: Path, extra: dict | None = None) -> Iterator[tuple]:
    """(hub, fake LMS): a real hub with the fake LMS registered and the two courses linked to it."""
    courses = make_courses(root)
    with running_fake_lms() as lms:
        settings = deep_merge({
            "courses_dir": str(courses),
            "auth": {"dev_login": False, "lti": {
                "platforms": [lms.platform_settings(PLATFORM, ("dep-1",))],
                "jwks_min_refetch_seconds": 0, "local_lms": True,
            }},
        }, extra or {})
        with running_hub(root, settings=settings) as hub:
            lms.tool_jwks_url = f"{hub.url}/hub/lti13/jwks"
            yield hub, lms


@pytest.fixture(scope="module")
def lti_env(tmp_path_factory):
    with lti_hub(tmp_path_factory.mktemp("lti")) as env:
        yield env


def username_for(lms, sub: str) -> str:
    return username_candidates(PLATFORM, lms.issuer, sub)[0]


def store_of(hub) -> LtiStore:
    return LtiStore(f"sqlite:///{hub.state_dir / 'lti.sqlite'}")
