"""Building the grading service: `make_app(settings, ...)` returns the tornado Application.

    app = make_app(settings, plugins=load_plugins(["my.module"]))

Everything the handlers share lives in one `ServiceContext` (in `app.settings["coursehub"]`):
the exchange core, course roles, the thread pool, plugins and per-student upload slots. Metrics
are module-level (`coursehub.grading.metrics`).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from tornado import web

from coursehub.platform.courses import Catalog, load_catalog
from coursehub.platform.settings import Settings

from .. import metrics
from ..archive import UploadLimits
from ..db import make_engine, session_factory
from ..storage import BlobStore
from .auth import CourseRoles, make_hub_auth
from .batching import GroupCommitter
from .core import ExchangeCore
from .fairness import StudentSlots
from .handlers import NotFoundHandler, api_handlers, security_headers
from .plugins import Plugins

DEFAULT_PREFIX = "/services/grading/"


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Finishes the hub's OAuth for browsers, with the app's HubOAuth (which holds the PKCE state)."""

    @property
    def hub_auth(self):  # noqa: ANN201 - HubOAuthenticated's property
        return self.settings["hub_auth"]

    def set_default_headers(self) -> None:
        security_headers(self, page=True)


class CatalogSource:
    """The course catalog, re-read when a course.yaml changes (deadlines, extensions), at most
    every `interval` seconds; a broken edit keeps the last good catalog."""

    def __init__(self, courses_dir: Path, interval: float = 10.0):
        self.courses_dir = Path(courses_dir)
        self.interval = interval
        self._lock = threading.Lock()
        self._catalog = load_catalog(self.courses_dir)
        self._stamp = self._mtimes()
        self._checked = time.monotonic()

    def _mtimes(self) -> tuple:
        return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in self.courses_dir.glob("*/course.yaml")))

    def __call__(self) -> Catalog:
        if time.monotonic() - self._checked > self.interval:
            with self._lock:
                self._checked = time.monotonic()
                stamp = self._mtimes()
                if stamp != self._stamp:
                    try:
                        self._catalog = load_catalog(self.courses_dir)
                    except Exception:  # noqa: BLE001 - keep serving with the last good catalog
                        import logging

                        logging.getLogger("coursehub.grading.service").exception("course files invalid")
                    self._stamp = stamp
        return self._catalog


@dataclass
class ServiceContext:
    core: ExchangeCore
    roles: CourseRoles
    executor: ThreadPoolExecutor
    plugins: Plugins
    #: Per-student admission of uploads (429 + Retry-After beyond it).
    slots: StudentSlots = field(default_factory=StudentSlots)
    #: Set when the service is shutting down: new requests get 503 (clients retry).
    stopping: bool = False

    def refresh_metrics(self) -> None:
        """Gauges read from the database at scrape time (blocking: run in the pool)."""
        counts = queue_counts(self.core.sessions)
        for state in metrics.QUEUE_STATES:
            metrics.QUEUE_DEPTH.labels(state).set(counts.get(state, 0))


def queue_counts(sessions: Any) -> dict[str, int]:
    """Autograde jobs by state; empty when the queue table is not there (a bare exchange database).
    Plain SQL on the table the queue's migration creates: the service does not import the worker."""
    try:
        with sessions() as s:
            return {str(k): int(v) for k, v in s.execute(text(
                "SELECT status, COUNT(*) FROM grading_jobs GROUP BY status")).all()}
    except (OperationalError, ProgrammingError):
        return {}


def limits_from(settings: Settings) -> UploadLimits:
    g = settings.grading
    return UploadLimits(max_file_bytes=g.max_file_bytes, max_total_bytes=g.max_submission_bytes)


def make_core(settings: Settings, engine: Any = None) -> ExchangeCore:
    """The exchange core on the configured database and storage (no web server)."""
    url = settings.grading_db_url()
    engine = engine or make_engine(url)
    sessions = session_factory(engine)
    return ExchangeCore(
        sessions, BlobStore(settings.storage_dir()), CatalogSource(settings.courses_dir),
        limits_from(settings), committer=GroupCommitter(sessions),
    )


def make_app(
    settings: Settings,
    *,
    core: ExchangeCore | None = None,
    plugins: Plugins | None = None,
    extra_handlers: list[tuple] | None = None,
    prefix: str | None = None,
    workers: int = 16,
    per_student: int = 2,
) -> web.Application:
    """The grading service application. `extra_handlers` (and plugins' handlers) are routes relative
    to the service prefix, e.g. `(r"dashboard/?", DashboardHandler)`."""
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX
    if not prefix.endswith("/"):
        prefix += "/"
    plugins = plugins or Plugins()
    core = core or make_core(settings)
    hub_auth = make_hub_auth(prefix)
    ctx = ServiceContext(core=core, roles=CourseRoles(hub_auth), plugins=plugins,
                         executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grading"),
                         slots=StudentSlots(per_student))
    extra = [(url_path_join(prefix, pattern), *rest) for pattern, *rest in [*(extra_handlers or []),
                                                                             *plugins.handlers]]
    handlers = [
        (url_path_join(prefix, "oauth_callback"), OAuthCallbackHandler),
        *extra,
        *api_handlers(prefix),
    ]
    return web.Application(
        handlers,
        hub_auth=hub_auth,
        coursehub=ctx,
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,  # browser pages (cookie auth); token-only API handlers skip it
        login_url=hub_auth.login_url,
        default_handler_class=NotFoundHandler,
    )
