"""`/hub/coursehub/open?course=&assignment=|textbook=`: start or reuse the server, then open the target.

Every query parameter is checked first (a bad one is a 400, never a 500). Server-side requests
(the exchange fetch, with a freshly minted token) go to the address the spawner reported for the
user's server, never to a host taken from the request: a Host header cannot send them elsewhere.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jupyterhub
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat

from ..courses import COURSE_ID_PATTERN
from ..groups import courses_of, is_staff
from .opening import (
    FetchRequest,
    ensure_assignment,
    first_notebook,
    lab_url,
    notebook_kernel,
    prestart_kernel,
    textbook_launch_url,
)
from .pages import PageMixin
from .targets import Target, open_path, staff_page_path, textbook_pages
from .web import SecurityHeaders

JH6 = jupyterhub.version_info >= (6,)
#: Redirects through spawn-pending before the page says the server did not start.
MAX_TRIES = 2
_COURSE = re.compile(COURSE_ID_PATTERN)
_ITEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class OpenArgs:
    course: str
    assignment: str
    textbook: str
    tries: int


def parse_open_args(get: Any) -> OpenArgs:
    """The open page's query, validated: `get(name, default)` is the handler's get_argument."""
    course = get("course", "")
    if not isinstance(course, str) or not _COURSE.fullmatch(course):
        raise web.HTTPError(400, "course must be a course id.")
    items = {}
    for name in ("assignment", "textbook"):
        value = get(name, "")
        if value and not _ITEM.match(value):
            raise web.HTTPError(400, f"{name} must be an id (letters, digits, '-', '_', '.').")
        items[name] = value
    raw = get("tries", "0") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2):
        raise web.HTTPError(400, "tries must be a small whole number.")
    return OpenArgs(course, items["assignment"], items["textbook"], int(raw))


def internal_server_url(spawner: Any) -> str:
    """The user's server as the hub itself reaches it (the spawner's reported address)."""
    server = spawner.server
    if server is None:
        raise web.HTTPError(503, "The server is not running.")
    return server.url


class OpenHandler(SecurityHeaders, PageMixin, BaseHandler):
    """Start or reuse the user's server with the course, then open the target in it."""

    @web.authenticated
    async def get(self) -> None:
        auth = self.authenticator
        user = self.current_user
        args = parse_open_args(lambda name, default: self.get_argument(name, default, strip=False))
        course = auth.catalog.get(args.course)
        roles = courses_of([g.name for g in user.groups])
        if course is None or args.course not in roles:
            return await self.render_page("lti_unknown_course.html", 404 if course is None else 403,
                                          context_title=args.course, context_id="", deployment_id="", platform="",
                                          role="", not_member=course is not None)
        target = Target("course")
        if args.assignment and course.assignment(args.assignment) is not None:
            target = Target("assignment", args.assignment)
        elif args.textbook and args.textbook in textbook_pages(course):
            target = Target("textbook", args.textbook)

        spawner = user.spawner
        here = open_path(self.hub.base_url, course.id, target)
        if not spawner.ready:
            if args.tries >= MAX_TRIES:
                return await self.render_page("lti_refused.html", 503, reason="server_not_started",
                                              message="Your server did not start. Try again in a minute; if it "
                                              "keeps failing, tell your course staff.")
            back = url_concat(here, {"tries": str(args.tries + 1)})
            if spawner.pending or spawner.active:
                url = url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name)
                return self.redirect(url_concat(url, {"next": back}))
            option = "opt-course" if JH6 else "course"
            url = url_path_join(self.hub.base_url, "spawn", user.escaped_name)
            return self.redirect(f"{url}?{urlencode({option: course.id, 'next': back})}")

        home = _home_dir(spawner)
        fetcher = auth.assignment_fetcher
        if target.kind != "textbook" and fetcher is not None and is_staff(roles[course.id]):
            # Staff land on the course's staff page: release/collect state, autograde progress, LMS
            # sync, and links to their Lab (formgrader inside it) and the dashboard. Their server is
            # already running, so the links answer at once.
            return self.redirect(staff_page_path(self.base_url, course.id))
        if target.kind == "assignment":
            token = None
            if fetcher is not None:  # the exchange fetches inside the user's own server, as the user
                token = user.new_api_token(scopes=[f"access:servers!user={user.name}"], expires_in=300,
                                           note="coursehub: fetch an assignment at launch")
            req = FetchRequest(user.name, course, target.item, server_url=internal_server_url(spawner),
                               home_dir=home, token=token)
            folder = await ensure_assignment(req, fetcher, auth.released_cache_dir)
            self.log.info("coursehub open: %s %s/%s -> %s", user.name, course.id, target.item, folder or "not available")
            if folder is None:
                assignment_title = course.assignment(target.item).title or target.item
                return await self.render_page("lti_not_released.html", 200, course_title=course.title,
                                              assignment=assignment_title, lab_url=url_path_join(user.url, "lab"))
            notebook = first_notebook(home, folder, course, target.item)
            if notebook and token and auth.prestart_kernel:  # its kernel starts while the browser loads Lab
                self._prestart(req.server_url, token, f"{folder}/{notebook}", course, target.item, notebook)
            return self.redirect(lab_url(user.url, f"{folder}/{notebook}" if notebook else folder))
        if target.kind == "textbook":
            return self.redirect(textbook_launch_url(course, target.item, user_base_url=user.url, home_dir=home))
        return self.redirect(url_path_join(user.url, "lab"))

    def _prestart(self, server_url: str, token: str, path: str, course: Any, assignment: str, notebook: str) -> None:
        async def run() -> None:
            try:
                kernel = await asyncio.to_thread(notebook_kernel, course, assignment, notebook)
                await prestart_kernel(server_url, token, path, kernel)
            except Exception:  # noqa: BLE001 - best effort: JupyterLab starts the kernel itself
                self.log.exception("kernel pre-start for %s failed", path)

        _background.add(task := asyncio.ensure_future(run()))
        task.add_done_callback(_background.discard)


#: Pre-start tasks in flight (a reference each, so none is collected before it ends).
_background: set = set()


def _home_dir(spawner: Any) -> Path | None:
    home = getattr(spawner, "home_dir", None)
    return Path(home) if isinstance(home, str) and home else None
