"""The `textbooks` hub service: serves each course's built book at /services/textbooks/<course>/.

A book is built when it is first asked for and rebuilt in the background when its source changed
(readers keep seeing the previous build meanwhile). Public books are readable without signing in;
a course with `textbook.public: false` asks for hub sign-in (OAuth) and course membership.
At start the service brings each course's content repository up to date, so launch links work
even before the first build.

Run by the hub as `python -m coursehub.platform.textbook.service` (see `hub_service`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.httpserver import HTTPServer

from ..courses import COURSE_ID_ROUTE, Catalog, Course
from ..groups import courses_of
from ..settings import Settings
from .pages import message_page, render

SERVICE_NAME = "textbooks"
#: How often a served book is checked against its source (seconds).
STALE_CHECK_SECONDS = 5.0
COURSE_RE = COURSE_ID_ROUTE

log = logging.getLogger("coursehub.textbooks")


#: At scale the service runs in the hub pod and the proxy pod reaches it through the `hub` Service.
SCALE_PORT = 8092


def hub_service(settings: Settings, port: int) -> tuple[dict, dict]:
    """The JupyterHub service definition and the role that lets signed-in users use it.

    Local: a loopback port. At scale: `http://hub:<textbook.port or 8092>`, listening on all
    interfaces of the hub pod (the chart must expose that port on the hub Service).
    """
    env = {
        "COURSEHUB_STATE_DIR": str(settings.state_dir),
        "COURSEHUB_COURSES_DIR": str(settings.courses_dir),
        "PATH": os.environ.get("PATH", os.defpath),
    }
    if settings.source is not None:
        env["COURSEHUB_SETTINGS"] = str(settings.source)
    for key in ("HOME", "LANG", "JUPYTER_PLATFORM_DIRS"):
        if key in os.environ:
            env[key] = os.environ[key]
    service = {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}" if settings.local else f"http://hub:{settings.textbook.port or SCALE_PORT}",
        "command": [sys.executable, "-m", "coursehub.platform.textbook.service"],
        "environment": env,
        "cwd": str(settings.state_dir),
        "oauth_no_confirm": True,  # our own service: no "authorize access" page for readers
    }
    return service, {"scopes": [f"access:services!service={SERVICE_NAME}"]}


class Books:
    """The books the service knows: where they are, whether they are stale, background builds."""

    def __init__(self, settings: Settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textbook-build")
        self.building: dict[str, asyncio.Future] = {}
        self.checked: dict[str, float] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # course -> (fingerprint, message)

    def course(self, course_id: str) -> Course | None:
        course = self.catalog.get(course_id)
        return course if course is not None and course.textbook is not None else None

    def folder(self, course_id: str) -> Path:
        from .build import book_dir

        return book_dir(self.settings, course_id)

    def sync_repos(self) -> None:
        from . import build  # noqa: F401 - imported now, so the first reader does not wait for it
        from .repo import sync_content_repo

        for course in self.catalog:
            if course.textbook is not None:
                try:
                    commit = sync_content_repo(course, self.settings)
                    if commit:
                        log.info("content repository of %s updated to %s", course.id, commit[:12])
                except Exception:  # noqa: BLE001 - one broken course must not stop the others
                    log.exception("could not update the content repository of %s", course.id)

    async def ensure(self, course: Course) -> str:
        """'ready' (serve it), 'building' (no book yet) or 'failed' (no book and the build failed)."""
        built = (self.folder(course.id) / "index.html").is_file()
        now = time.monotonic()
        if course.id not in self.building and now - self.checked.get(course.id, -1e9) > STALE_CHECK_SECONDS:
            self.checked[course.id] = now
            loop = asyncio.get_running_loop()
            try:
                needed, fingerprint = await loop.run_in_executor(None, self._needs_build, course)
            except Exception as e:  # noqa: BLE001 - e.g. an unreadable _toc.yml: reported like a failed build
                log.error("cannot check the textbook of %s: %s", course.id, e)
                self.failed[course.id] = ("", str(e))
                needed = False
            failed = self.failed.get(course.id)
            if needed and not (failed and failed[0] == fingerprint):
                future = loop.run_in_executor(self.pool, self._build, course, fingerprint)
                self.building[course.id] = future
                future.add_done_callback(lambda _f, cid=course.id: self._finished(cid))
        if built:
            return "ready"
        if course.id in self.building:
            return "building"
        return "failed" if course.id in self.failed else "building"

    def _needs_build(self, course: Course) -> tuple[bool, str]:
        from .build import built_fingerprint, plan

        fingerprint = plan(course, self.settings)[3]
        return built_fingerprint(self.folder(course.id)) != fingerprint, fingerprint

    def _build(self, course: Course, fingerprint: str) -> None:
        from .build import build_textbook

        try:
            log.info("building the textbook of %s", course.id)
            build_textbook(course, self.settings, progress=lambda line: log.info("%s", line.strip()))
            self.failed.pop(course.id, None)
        except Exception as e:  # noqa: BLE001 - reported on the page and in the log
            log.exception("the textbook of %s could not be built", course.id)
            self.failed[course.id] = (fingerprint, str(e))

    def _finished(self, course_id: str) -> None:
        """Back on the event loop after a build (done or failed)."""
        self.building.pop(course_id, None)
        self.checked[course_id] = time.monotonic()


class Base(web.RequestHandler):
    @property
    def books(self) -> Books:
        return self.settings["books"]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = kwargs.get("exc_info", (None, None))[1]
        message = getattr(reason, "log_message", None) or self._reason
        self.finish(message_page(f"{status_code}: {self._reason}", message or ""))


class IndexHandler(Base):
    """The list of textbooks."""

    def get(self) -> None:
        books = [{"id": c.id, "title": c.title, "public": c.textbook.public}
                 for c in self.books.catalog if c.textbook is not None]
        self.finish(render("index.html", title="Textbooks", books=books))


class RedirectToBook(Base):
    def get(self, course_id: str) -> None:
        self.redirect(f"{self.request.path}/", permanent=False)


def _hub_oauthenticated() -> type:
    """HubOAuthenticated when running under the hub, a stand-in (never signed in) otherwise."""
    if os.environ.get("JUPYTERHUB_API_TOKEN"):
        from jupyterhub.services.auth import HubOAuthenticated

        return HubOAuthenticated

    class NoHub:
        def get_current_user(self) -> None:
            return None

        def get_login_url(self) -> str:
            raise web.HTTPError(403, "This textbook is for course members; sign-in needs the hub.")

    return NoHub


class BookHandler(_hub_oauthenticated(), web.StaticFileHandler):  # type: ignore[misc]
    """One file of one course's book; members-only books need a hub user in the course's groups."""

    def initialize(self, **kwargs: Any) -> None:  # root is set per request (one folder per course)
        super().initialize(path="/nonexistent", default_filename="index.html")

    @property
    def books(self) -> Books:
        return self.settings["books"]

    # Readers of public books need no hub session; members-only books are checked in prepare().
    @property
    def hub_scopes(self) -> set[str] | None:  # type: ignore[override]
        return None

    async def prepare(self) -> None:
        course_id = self.path_args[0]
        course = self.books.course(course_id)
        if course is None:
            raise web.HTTPError(404, f"There is no textbook {course_id!r}.")
        if not course.textbook.public:
            user = self.current_user
            if user is None:
                if self.request.method in ("GET", "HEAD"):
                    self.redirect(self.get_login_url())
                    return
                raise web.HTTPError(403)
            if not _member(user, course_id):
                log.info("refused %s: not a member of %s", user.get("name"), course_id)
                raise web.HTTPError(403, f"This textbook is for members of {course.title}.")
            self.members_only = True
            self.set_header("Cache-Control", "private, no-cache")
        state = await self.books.ensure(course)
        if state != "ready":
            self.set_status(503 if state == "building" else 500)
            self.set_header("Cache-Control", "no-store")
            if state == "building":
                self.finish(message_page(course.title, "This textbook is being built (its notebooks are run "
                                         "once). This page reloads by itself in a few seconds.", refresh=3))
            else:
                self.finish(message_page(course.title, "This textbook could not be built. Please tell your "
                                         "instructor; the platform's log says why."))
            return
        self.root = str(self.books.folder(course_id))

    members_only = False

    def get_cache_time(self, path: str, modified: object, mime_type: str) -> int:
        # Members-only books: no long-lived (shareable) caching, even of versioned assets.
        return 0 if self.members_only else super().get_cache_time(path, modified, mime_type)

    async def get(self, course_id: str, path: str, include_body: bool = True) -> None:  # type: ignore[override]
        await super().get(path, include_body=include_body)

    async def head(self, course_id: str, path: str) -> None:  # type: ignore[override]
        await super().get(path, include_body=False)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        rel = os.path.relpath(absolute_path, root)
        if any(part.startswith(".") for part in Path(rel).parts):
            raise web.HTTPError(404)  # no hidden files, and nothing outside the book
        real_root = os.path.realpath(root)
        real = os.path.realpath(absolute_path)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        Base.write_error(self, status_code, **kwargs)  # type: ignore[arg-type]


def _member(user: dict, course_id: str) -> bool:
    return course_id in courses_of(user.get("groups", []))


def make_app(settings: Settings, catalog: Catalog, prefix: str = "/services/textbooks/") -> web.Application:
    prefix = "/" + prefix.strip("/") + "/"
    handlers: list[tuple] = [
        (prefix, IndexHandler),
        (prefix + COURSE_RE, RedirectToBook),
        (prefix + COURSE_RE + r"/(.*)", BookHandler),
    ]
    if os.environ.get("JUPYTERHUB_API_TOKEN"):
        from jupyterhub.services.auth import HubOAuthCallbackHandler

        handlers.insert(0, (prefix + "oauth_callback", HubOAuthCallbackHandler))
    return web.Application(handlers, books=Books(settings, catalog), log_function=_log_request,
                           cookie_secret=os.urandom(32), xsrf_cookies=False)


def _log_request(handler: web.RequestHandler) -> None:
    """Access log without query strings (OAuth codes) and with 'being built' (503) as info, not error."""
    status = handler.get_status()
    level = logging.INFO if status < 400 or status in (403, 404, 503) else logging.WARNING
    if status >= 500 and status != 503:
        level = logging.ERROR
    ms = 1000.0 * handler.request.request_time()
    log.log(level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path, ms)


async def serve(settings: Settings, catalog: Catalog, stopped: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or until `stopped` is set)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/textbooks/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8092"))
    app = make_app(settings, catalog, prefix)
    server = HTTPServer(app, xheaders=True)
    server.listen(url.port or 80, url.hostname if settings.local else "0.0.0.0")
    log.info("textbooks at %s (listening on %s)", prefix, url.netloc)
    books: Books = app.settings["books"]
    loop = asyncio.get_running_loop()
    if stopped is None:
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
    await loop.run_in_executor(None, books.sync_repos)
    if settings.textbook.build_at_start:
        for course in catalog:
            if course.textbook is not None:
                await books.ensure(course)
    await stopped.wait()
    log.info("stopping")
    server.stop()
    build = sys.modules.get("coursehub.platform.textbook.build")
    if build is not None:
        build.stop_running_builds()
    books.pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    """Started, logged and stopped like the other services (coursehub.platform.service_runner)."""
    from .. import service_runner

    p = service_runner.parser("python -m coursehub.platform.textbook.service", "Serve the courses' textbooks.")
    return service_runner.run(argv, p, _serve_until_stopped)


def _serve_until_stopped(args, settings: Settings, stop) -> int:  # noqa: ANN001 - Namespace, service_runner.Stop
    from ..courses import load_catalog

    async def until_stopped() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.on_stop(lambda: loop.call_soon_threadsafe(stopped.set))
        await serve(settings, load_catalog(settings.courses_dir), stopped)

    asyncio.run(until_stopped())
    return 0


if __name__ == "__main__":
    sys.exit(main())
