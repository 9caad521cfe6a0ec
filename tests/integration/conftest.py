"""Fixtures shared by integration tests of several folders."""

from __future__ import annotations

import pytest
from support.course_env import BuiltCourseEnv, build_course_env


@pytest.fixture(scope="session")
def built_course_env(tmp_path_factory) -> BuiltCourseEnv:
    """A catalog course with its own environment (support/course_env.py), built once per session."""
    from coursehub.platform.environments_build import EnvBuildError, find_uv

    try:
        find_uv()
    except EnvBuildError:
        pytest.fail("uv is not installed (pip install uv)")
    return build_course_env(tmp_path_factory.mktemp("course-env"))
