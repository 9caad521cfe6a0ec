"""Launch links: the hub URL that opens a textbook page as a live notebook in the student's server.

The link goes through the hub's spawn page (so the server starts with the course's profile) to
nbgitpuller's `git-pull` endpoint in the user's server, which clones or merges the course's content
repository into `~/<course>-textbook/` and then opens the page in JupyterLab. Every textbook page
and every LMS resource link that points at a page uses `textbook_launch_url`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlencode

from ..courses import Course
from ..errors import ConfigError, Problem
from ..settings import Settings

#: What counts as a page of a textbook (and can be opened as a notebook or a Markdown file).
PAGE_SUFFIXES = (".ipynb", ".md")


class PageNotFound(ValueError):
    """The requested page is not part of the course's textbook."""


def clone_dir(course_id: str) -> str:
    """The folder in the student's home that holds their copy of the course's textbook."""
    return f"{course_id}-textbook"


def local_repo_path(settings: Settings, course_id: str) -> Path:
    """The content repository coursehub keeps for a course on the local platform (a bare git repo)."""
    return settings.state_dir / "textbook-repos" / f"{course_id}.git"


def content_repo_url(course: Course, settings: Settings) -> str:
    """Where nbgitpuller clones the textbook from: the course's git remote, else the local repository."""
    if course.textbook is None:
        raise ConfigError([_problem(course, "textbook", "this course has no textbook")])
    if course.textbook.repo:
        return course.textbook.repo
    if not settings.local:
        raise ConfigError([_problem(
            course, "textbook.repo",
            "set the textbook's git remote: at scale user servers cannot reach the hub's local repository",
        )])
    return local_repo_path(settings, course.id).as_uri()


def page_path(course: Course, page: str) -> str:
    """'02-lists', '02-lists.ipynb' or 'part1/intro' -> the page's file path inside the textbook.

    Refuses anything path-like that leaves the textbook, and pages that do not exist (when the
    textbook folder is at hand).
    """
    raw = page.strip().lstrip("/")
    rel = PurePosixPath(raw)
    if not raw or "\\" in raw or any(part in ("..", "") or part.startswith(".") for part in rel.parts):
        raise PageNotFound(f"{page!r} is not a textbook page")
    folder = course.textbook_dir()
    candidates = [rel] if rel.suffix in PAGE_SUFFIXES else [rel.with_name(rel.name + s) for s in PAGE_SUFFIXES]
    if folder is None:
        if rel.suffix not in PAGE_SUFFIXES:
            return str(rel.with_name(rel.name + ".ipynb"))
        return str(rel)
    for candidate in candidates:
        if (folder / candidate).is_file():
            return str(candidate)
    raise PageNotFound(f"the textbook of {course.id} has no page {page!r}")


def git_pull_url(course: Course, page_file: str, settings: Settings) -> str:
    """nbgitpuller's link (hub-relative, via /hub/user-redirect) for one page file of the textbook."""
    assert course.textbook is not None
    target = clone_dir(course.id)
    query = urlencode(
        {
            "repo": content_repo_url(course, settings),
            "branch": course.textbook.branch,
            "targetpath": target,
            "urlpath": f"lab/tree/{target}/{page_file}",
        },
        quote_via=quote,
        safe="/:",
    )
    return f"/hub/user-redirect/git-pull?{query}"


def with_course(course_id: str, next_url: str) -> str:
    """Wrap a hub-relative URL so the user's server (if not running yet) starts with the course profile.

    JupyterHub 6 takes user options as `opt-<name>` query arguments on /hub/spawn; 5.x as `<name>`.
    A running server goes straight to `next_url`.
    """
    import jupyterhub

    option = "opt-course" if jupyterhub.version_info >= (6,) else "course"
    return "/hub/spawn?" + urlencode({option: course_id, "next": next_url}, quote_via=quote, safe="/")


def launch_url(course: Course, page: str, settings: Settings) -> str:
    """The hub-relative URL that opens `page` of `course`'s textbook in the user's own server."""
    if course.textbook is None:
        raise ConfigError([_problem(course, "textbook", "this course has no textbook")])
    return with_course(course.id, git_pull_url(course, page_path(course, page), settings))


def textbook_launch_url(course: Course | str, page: str, settings: Settings | None = None) -> str:
    """Public entry point: `course` is a Course or a course id (looked up in the configured catalog).

    Raises `PageNotFound` for a page that is not in the textbook, and `ConfigError` for a course
    without a textbook (or without a git remote at scale).
    """
    from ..courses import load_catalog
    from ..settings import load_settings

    settings = settings or load_settings()
    if isinstance(course, str):
        found = load_catalog(settings.courses_dir).get(course)
        if found is None:
            raise ConfigError([Problem(settings.courses_dir, course, "no such course")])
        course = found
    return launch_url(course, page, settings)


def _problem(course: Course, key: str, message: str) -> Problem:
    return Problem(course.folder / "course.yaml" if course.folder else None, key, message)
