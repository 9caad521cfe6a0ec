"""Putting what a launch opens into the user's server, and the URL JupyterLab opens it at.

Assignments reach a student's server through the exchange: the grading area provides
`coursehub.grading.exchange.launch.fetch_for_launch(request) -> str | None`, which runs nbgrader's
`fetch_assignment` for the user through the grading service and returns the assignment folder
relative to the server's root (e.g. "demo-101/ps1"), or None (e.g. not released yet). When
grading is turned off (no exchange), the local platform uses a fallback: the hub writes the
student version of the assignment (solutions and hidden tests removed with nbgrader's own
preprocessors) into the user's home, once.

Textbook pages open through the textbook area's `coursehub.platform.textbook.textbook_launch_url`
(an nbgitpuller link through the hub); if it cannot give one, a copy of the page is put in the
user's home (local spawner only, never overwriting their edits) and opened.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..courses import Course

log = logging.getLogger("JupyterHub").getChild("coursehub.lti.opening")


@dataclass(frozen=True)
class FetchRequest:
    """What the exchange needs to fetch `assignment` of `course` into `username`'s server."""

    username: str
    course: Course
    assignment: str
    #: The user's server, e.g. http://127.0.0.1:8000/user/<name>/ (running and ready).
    server_url: str
    #: The user's home folder when the hub can see it (local spawner), else None.
    home_dir: Path | None
    #: A short-lived token for the user's server (scope access:servers!user=<name>), or None.
    token: str | None = None


Fetcher = Callable[[FetchRequest], Awaitable[str | None]]


def exchange_fetcher() -> Fetcher | None:
    """The grading area's fetch function, if it is installed."""
    try:
        module = importlib.import_module("coursehub.grading.exchange.launch")
    except ImportError:
        return None
    return getattr(module, "fetch_for_launch", None)


def assignment_dir(course_id: str, assignment: str) -> str:
    """Where an assignment lives in a user's server: nbgrader's fetch with path_includes_course."""
    return f"{course_id}/{assignment}"


async def ensure_assignment(req: FetchRequest, fetcher: Fetcher | None, cache_dir: Path | None = None) -> str | None:
    """Make sure the assignment is in the user's server; its folder relative to the server root, or
    None when the exchange has nothing for this user (e.g. not released yet).

    With the exchange (`fetcher`), only what the instructor released reaches students. Without it
    (grading turned off), the local platform writes the student version from the course's source.
    """
    if fetcher is not None:
        try:
            folder = await fetcher(req)
        except Exception:  # noqa: BLE001 - the launch shows a page instead of an error
            log.exception("exchange fetch of %s/%s for %s failed", req.course.id, req.assignment, req.username)
            return None
        if folder and req.home_dir is not None and not (req.home_dir / folder).is_dir():
            log.warning("exchange fetch of %s/%s for %s reported %r, which is not there",
                        req.course.id, req.assignment, req.username, folder)
            return None
        return folder or None
    rel = assignment_dir(req.course.id, req.assignment)
    if req.home_dir is not None and not (req.home_dir / rel).exists():
        loop = asyncio.get_running_loop()
        released = await loop.run_in_executor(None, released_version, req.course, req.assignment, cache_dir)
        if released is not None:
            await loop.run_in_executor(None, _copy_once, released, req.home_dir / rel)
    return rel


def _fingerprint(source: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(source.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(source)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def released_version(course: Course, assignment: str, cache_dir: Path | None) -> Path | None:
    """The student version of an assignment, generated once per source version into `cache_dir`."""
    a = course.assignment(assignment)
    if a is None or course.folder is None:
        return None
    source = course.folder / a.source_dir
    cache = cache_dir or Path(tempfile.gettempdir()) / "coursehub-released"
    dest = cache / course.id / assignment / _fingerprint(source)
    if not dest.exists():
        write_student_version(course, assignment, dest)
    return dest


def _copy_once(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{id(src)}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, tmp)
    try:
        tmp.rename(dest)
    except OSError:  # another launch of the same user finished first
        shutil.rmtree(tmp, ignore_errors=True)


def write_student_version(course: Course, assignment: str, dest: Path) -> None:
    """The released (student) version of an assignment's notebooks, written once into `dest`."""
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions

    a = course.assignment(assignment)
    if a is None or course.folder is None or dest.exists():
        return
    source = course.folder / a.source_dir
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    steps = [ClearSolutions(), ClearOutput(), ClearHiddenTests(), ClearMarkScheme()]
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        out = tmp / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            resources: dict = {}
            for step in steps:
                nb, resources = step.preprocess(nb, resources)
            nbformat.write(nb, out)
        else:
            shutil.copy2(path, out)
    try:
        tmp.rename(dest)
    except OSError:  # another launch finished first
        shutil.rmtree(tmp, ignore_errors=True)


def preload() -> None:
    """Import nbgrader's preprocessors ahead of the first launch (a thread at hub start)."""
    import nbgrader.preprocessors  # noqa: F401


def first_notebook(home_dir: Path | None, folder: str, course: Course, assignment: str) -> str | None:
    """The notebook to open in an assignment folder: the first by name."""
    names: list[str] = []
    if home_dir is not None and (home_dir / folder).is_dir():
        names = sorted(p.name for p in (home_dir / folder).glob("*.ipynb"))
    if not names and course.folder is not None and course.assignment(assignment) is not None:
        names = sorted(p.name for p in (course.folder / course.assignment(assignment).source_dir).glob("*.ipynb"))
    return names[0] if names else None


def notebook_kernel(course: Course, assignment: str, notebook: str) -> str | None:
    """The kernel the course's own copy of an assignment notebook names (metadata.kernelspec), or
    None (the server's default) when it names none or the course has no such notebook."""
    a = course.assignment(assignment)
    if course.folder is None or a is None:
        return None
    try:
        with open(course.folder / a.source_dir / notebook, encoding="utf-8") as f:
            name = json.load(f).get("metadata", {}).get("kernelspec", {}).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


async def prestart_kernel(server_url: str, token: str, path: str, kernel_name: str | None) -> None:
    """Create the session JupyterLab will ask for when it opens `path` (a notebook), so its kernel
    starts while the browser loads Lab instead of after. Best effort: a failure is logged and Lab
    starts the kernel as it always does. The user server's `coursehub.platform.one_session`
    extension makes Lab's own request for the same notebook join this one (one kernel)."""
    from ..httpclient import request

    body: dict = {"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook"}
    if kernel_name:
        body["kernel"] = {"name": kernel_name}
    r = await request("POST", f"{server_url.rstrip('/')}/api/sessions", body=json.dumps(body), request_timeout=120,
                      headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
                      max_bytes=1024 * 1024)
    if not r.ok:
        log.info("kernel pre-start for %s: HTTP %s %s (JupyterLab will start it)", path, r.status, r.error)


def lab_url(user_base_url: str, path: str) -> str:
    """JupyterLab on `path` (relative to the server root) in the user's server."""
    return f"{user_base_url.rstrip('/')}/lab/tree/{quote(path)}"


def textbook_launch_url(course: Course, page: str, *, user_base_url: str, home_dir: Path | None) -> str:
    """Where a textbook page opens for a user: the textbook area's nbgitpuller link when it can
    give one (`coursehub.platform.textbook.textbook_launch_url`), else a copy in the user's home."""
    try:
        from ..settings import load_settings
        from ..textbook import textbook_launch_url as provided

        return provided(course, page, load_settings())
    except Exception as e:  # noqa: BLE001 - no textbook area, no repository: fall back to a copy
        log.info("textbook link for %s/%s unavailable (%s); opening a copy", course.id, page, e)
    rel = f"{course.id}/textbook/{page}.ipynb"
    folder = course.textbook_dir()
    source = folder / f"{page}.ipynb" if folder else None
    if home_dir is not None and source is not None and source.is_file():
        dest = home_dir / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    return lab_url(user_base_url, rel)
