"""Launch links: where they point, and what they refuse."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jupyterhub
import pytest

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_course
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import load_settings
from coursehub.platform.textbook import PageNotFound, textbook_launch_url
from coursehub.platform.textbook.links import clone_dir, content_repo_url, page_path

DEMO = SOURCE_ROOT / "courses" / "demo-101"
#: How the hub's spawn page takes the course option: `opt-course` on JupyterHub 6, `course` on 5.x.
COURSE_OPTION = "opt-course" if jupyterhub.version_info >= (6,) else "course"

pytestmark = pytest.mark.hubcompat  # also runs on JupyterHub 5.5 (scripts/test)


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(SOURCE_ROOT / "courses"))


def unwrap(url: str) -> tuple[dict, str, dict]:
    """(spawn query, git-pull path, git-pull query) of a launch URL."""
    spawn = urlsplit(url)
    assert spawn.path == "/hub/spawn"
    outer = parse_qs(spawn.query)
    pull = urlsplit(outer["next"][0])
    return outer, pull.path, {k: v[0] for k, v in parse_qs(pull.query).items()}


def test_launch_url_starts_the_course_server_then_pulls_and_opens_the_page(settings):
    url = textbook_launch_url("demo-101", "02-lists", settings)
    outer, path, query = unwrap(url)
    assert outer[COURSE_OPTION] == ["demo-101"]
    assert path == "/hub/user-redirect/git-pull"
    repo = settings.state_dir / "textbook-repos" / "demo-101.git"
    assert query == {
        "repo": repo.as_uri(),
        "branch": "main",
        "targetpath": "demo-101-textbook",
        "urlpath": "lab/tree/demo-101-textbook/02-lists.ipynb",
    }
    assert clone_dir("demo-101") == "demo-101-textbook"


def test_pages_resolve_with_or_without_suffix(settings):
    course = load_course(DEMO)
    assert page_path(course, "01-welcome") == "01-welcome.ipynb"
    assert page_path(course, "01-welcome.ipynb") == "01-welcome.ipynb"
    assert page_path(course, "/03-plotting") == "03-plotting.ipynb"


@pytest.mark.parametrize("page", [
    "", "nope", "../course.yaml", "../../courses/demo-101/course.yaml", "textbook/../../x",
    ".ipynb_checkpoints/01-welcome-checkpoint", "a\\..\\b", "01-welcome.py", "/etc/passwd",
])
def test_anything_that_is_not_a_page_is_refused(settings, page):
    with pytest.raises(PageNotFound):
        textbook_launch_url(load_course(DEMO), page, settings)


def test_a_course_git_remote_is_used_when_set_and_required_at_scale(settings, tmp_path):
    course = load_course(DEMO)
    remote = course.model_copy(update={"textbook": course.textbook.model_copy(
        update={"repo": "https://git.example.edu/demo/textbook.git", "branch": "fall"})})
    _, _, query = unwrap(textbook_launch_url(remote, "01-welcome", settings))
    assert query["repo"] == "https://git.example.edu/demo/textbook.git"
    assert query["branch"] == "fall"

    at_scale = settings.model_copy(update={"mode": "kubernetes"})
    with pytest.raises(ConfigError, match="textbook.repo"):
        content_repo_url(course, at_scale)
    assert content_repo_url(remote, at_scale) == "https://git.example.edu/demo/textbook.git"


def test_unknown_course_and_course_without_textbook(settings):
    with pytest.raises(ConfigError, match="no such course"):
        textbook_launch_url("no-such-course", "01-welcome", settings)
    bare = load_course(DEMO).model_copy(update={"textbook": None})
    with pytest.raises(ConfigError, match="no textbook"):
        textbook_launch_url(bare, "01-welcome", settings)
