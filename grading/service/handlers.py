"""The REST exchange API (tornado handlers over `ExchangeCore`).

All routes live under the service prefix (`/services/grading/`). API routes take the hub token in
the `Authorization` header only (no cookies, so no cross-site requests); browser pages use the
hub's OAuth cookie. Errors are JSON `{"error": message}` with a status that says what happened.
See docs/instructors/exchange.md for the route table.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import InterfaceError, OperationalError
from tornado import web
from tornado.escape import xhtml_escape
from tornado.ioloop import IOLoop

from .. import envparity, metrics
from ..archive import HEADER_SLACK
from .core import DB_RETRY_AFTER, Caller, CollectedEvent, ServiceError
from .inputs import bounded, int_param, parse_body, short_param

log = logging.getLogger("coursehub.grading.service")

#: A refused upload is read (and dropped) up to this many times its limit, so the client sees the
#: 413 message instead of a reset connection; beyond that the connection is closed.
DRAIN_FACTOR = 4
#: The hub's scope for reading metrics (JupyterHub's own /hub/metrics needs the same).
METRICS_SCOPE = "read:metrics"


def security_headers(handler: web.RequestHandler, page: bool) -> None:
    """The hub's protections on every response: pages may be framed only by the hub's own origin
    (the service is served through the hub's proxy, same origin), API answers by nobody."""
    if page:
        handler.set_header("Content-Security-Policy", "frame-ancestors 'self'; object-src 'none'; base-uri 'self'")
        handler.set_header("X-Frame-Options", "SAMEORIGIN")
    else:
        handler.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "same-origin")


def database_refusal(exc: Exception) -> ServiceError:
    """A locked, full or unreachable grading database as the client should see it."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "disk is full" in text or "no space left" in text:
        metrics.STORE_FULL.set(1)
        return ServiceError(507, "The grading database's disk is full; nothing was changed. "
                                 "Please tell your instructor and try again later.")
    metrics.DB_BUSY.labels("service").inc()
    return ServiceError(503, "The grading database is busy or unavailable; nothing was changed. "
                             "Please try again in a moment.", retry_after=DB_RETRY_AFTER)


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Hub authentication, course roles, JSON errors, and a thread pool for blocking work."""

    #: API handlers refuse cookie authentication (cross-site request protection).
    token_only = True
    #: Handlers that need no authentication (health check).
    public = False
    #: Handlers whose every request concerns only the course in their first path argument: the
    #: caller's roles may come from that course's cached member lists (auth.CourseRoles.caller).
    course_scoped = False
    #: Handlers whose POST may be authenticated by a token the hub confirmed earlier, without
    #: waiting for the hub (auth.ServiceHubAuth.known_user): submissions at a deadline.
    known_token_posts = False

    @property
    def hub_auth(self):  # noqa: ANN201 - HubOAuthenticated's property
        return self.settings["hub_auth"]

    def set_default_headers(self) -> None:
        security_headers(self, page=not self.token_only)

    @property
    def ctx(self) -> Any:
        return self.settings["coursehub"]

    @property
    def core(self) -> Any:
        return self.ctx.core

    def check_xsrf_cookie(self) -> None:
        if self.token_only:
            return  # token-authenticated API: no ambient credentials to forge
        return super().check_xsrf_cookie()

    async def prepare(self) -> None:
        self.caller: Caller | None = None
        if self.public:
            return
        if self.ctx.stopping:
            raise ServiceError(503, "The grading service is restarting; please try again in a moment.",
                               retry_after=DB_RETRY_AFTER)
        if self.token_only and not self.request.headers.get("Authorization"):
            raise ServiceError(401, "Sign-in required: send your JupyterHub token in the Authorization header.")
        model = None
        if self.known_token_posts and self.request.method == "POST":
            model = self.hub_auth.known_user(self.hub_auth.get_token(self, in_cookie=False),
                                             self.hub_auth.get_session_id(self))
        if model is None:
            model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            if self.token_only:
                raise ServiceError(401, "Your JupyterHub token was not accepted; sign in again.")
            self._hub_auth_user_cache = None
            self.redirect(self.get_login_url())
            return
        try:
            model = self.check_hub_user(model)
        except Exception:  # noqa: BLE001 - UserNotAllowed (and friends): missing access scope
            model = None
        if not model:
            raise ServiceError(403, "Your token may not use the grading service "
                                    "(it lacks the access:services!service=grading scope).")
        self._hub_auth_user_cache = model
        caller = await self.ctx.roles.caller(model, self.scoped_course())
        if caller is None:
            raise ServiceError(403, "Only hub users can use the exchange.")
        self.caller = caller

    def scoped_course(self) -> str | None:
        """The course this request is only about (a course of the catalog), else None."""
        if not self.course_scoped or not self.path_args:
            return None
        course_id = self.path_args[0]
        return course_id if course_id in self.core.catalog().courses else None

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await IOLoop.current().run_in_executor(self.ctx.executor, lambda: fn(*args, **kwargs))
        except (OperationalError, InterfaceError) as e:
            log.warning("database unavailable during %s %s", self.request.method, self.request.path)
            raise database_refusal(e) from None
        except RuntimeError:
            if self.ctx.stopping:  # the worker pool is shut down
                raise ServiceError(503, "The grading service is restarting; please try again in a moment.",
                                   retry_after=DB_RETRY_AFTER) from None
            raise

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def write_tar(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.set_header("Content-Type", "application/x-tar")
        self.set_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.set_header(k, v)
        self.finish(data)

    def flag(self, name: str) -> bool:
        return self.get_argument(name, "0").lower() in ("1", "true", "yes")

    def param(self, name: str) -> str | None:
        """A short query argument (ids, timestamps); empty means absent, overlong is a 400."""
        return short_param(self.get_argument(name, None) or None, name)

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001
        if isinstance(value, ServiceError):
            log.info("%s %s -> %d %s (%s)", self.request.method, bounded(self.request.path), value.status,
                     bounded(value.message, 500), self.caller.name if getattr(self, "caller", None) else "-")
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ServiceError):
            self.set_status(exc.status)
            message = bounded(exc.message, 2000)
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(int(exc.retry_after)))
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
        else:
            message = "The grading service failed; the error is in its log."
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": message}))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ServiceError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)


class UploadMixin:
    """Streams the request body into memory up to the configured limit; answers 413 beyond it."""

    def upload_limit(self) -> int:
        limits = self.ctx.core.limits  # type: ignore[attr-defined]
        return limits.max_total_bytes + limits.max_entries * HEADER_SLACK + 10240

    #: Uploads (POST) of one caller admitted at a time by the context's StudentSlots (submissions).
    per_student = False

    async def prepare(self) -> None:
        self._body = bytearray()
        self._too_big = False
        self._slot: str | None = None
        self._working = False
        await super().prepare()  # type: ignore[misc]
        limit = self.upload_limit()
        self.request.connection.set_max_body_size(limit * DRAIN_FACTOR)  # type: ignore[attr-defined]
        length = self.request.headers.get("Content-Length")  # type: ignore[attr-defined]
        if length and length.isdigit() and len(length) < 19 and int(length) > limit * DRAIN_FACTOR:
            raise ServiceError(413, self.too_big_message())
        caller = self.caller  # type: ignore[attr-defined]
        if self.per_student and caller is not None and self.request.method == "POST":  # type: ignore[attr-defined]
            slots = self.ctx.slots  # type: ignore[attr-defined]
            if not slots.try_acquire(caller.name):
                raise ServiceError(429, f"You already have {slots.per_student} uploads in progress; this one "
                                        "was not stored. It will be sent again in a moment.",
                                   retry_after=slots.retry_after)
            self._slot = caller.name

    def release_slot(self) -> None:
        if self._slot is not None:
            self.ctx.slots.release(self._slot)  # type: ignore[attr-defined]
            self._slot = None

    def on_connection_close(self) -> None:
        if not getattr(self, "_working", False):  # an upload still being stored keeps its slot
            self.release_slot()
        super().on_connection_close()  # type: ignore[misc]

    def on_finish(self) -> None:
        if getattr(self, "_slot", None) is not None:
            self.release_slot()
        super().on_finish()  # type: ignore[misc]

    def data_received(self, chunk: bytes) -> None:
        if self._too_big:
            return
        self._body += chunk
        if len(self._body) > self.upload_limit():
            self._too_big = True
            self._body = bytearray()

    def too_big_message(self) -> str:
        limit = self.ctx.core.limits.max_total_bytes  # type: ignore[attr-defined]
        return f"The upload is larger than the limit of {limit / 2**20:.1f} MiB per submission."

    def body(self) -> bytes:
        if self._too_big:
            raise ServiceError(413, self.too_big_message())
        return bytes(self._body)


class HealthHandler(BaseHandler):
    public = True

    def get(self) -> None:
        self.write_json({"ok": True})


class CoursesHandler(BaseHandler):
    async def get(self) -> None:
        courses = await self.run(self.core.courses_of, self.caller)
        limits = self.core.limits
        self.write_json({"user": self.caller.name, "courses": courses,
                         "limits": {"max_file_bytes": limits.max_file_bytes,
                                    "max_submission_bytes": limits.max_total_bytes,
                                    "max_entries": limits.max_entries}})


class ReleasesHandler(BaseHandler):
    async def get(self) -> None:
        course = self.param("course")
        assignment = self.param("assignment")
        self.write_json(await self.run(self.core.releases, self.caller, course, assignment))


@web.stream_request_body
class ReleaseHandler(UploadMixin, BaseHandler):
    course_scoped = True
    async def put(self, course_id: str, assignment_id: str) -> None:
        info = await self.run(self.core.release, self.caller, course_id, assignment_id, self.body(),
                              self.flag("force"))
        self.write_json(info, status=201)

    async def delete(self, course_id: str, assignment_id: str) -> None:
        self.write_json(await self.run(self.core.unrelease, self.caller, course_id, assignment_id))

    async def get(self, course_id: str, assignment_id: str) -> None:
        info, data = await self.run(self.core.release_files, self.caller, course_id, assignment_id)
        self.write_tar(data, {"X-Coursehub-Release": json.dumps(info)})


@web.stream_request_body
class SubmissionsHandler(UploadMixin, BaseHandler):
    course_scoped = True
    per_student = True
    known_token_posts = True

    async def post(self, course_id: str, assignment_id: str) -> None:
        upload_id = short_param(self.request.headers.get("X-Upload-Id") or None, "X-Upload-Id", 64)
        body = self.body()
        self._working = True
        try:
            info = await self.run(self.core.submit, self.caller, course_id, assignment_id, body, upload_id,
                                  self.request.headers.get(envparity.HEADER_ENVIRONMENT),
                                  self.request.headers.get(envparity.HEADER_KERNEL))
        finally:
            self._working = False
            self.release_slot()
        kind = "duplicate" if info["duplicate"] else ("late" if info["late"] else "on_time")
        metrics.SUBMISSIONS_RECEIVED.labels(kind).inc()
        if not info["duplicate"] and self.ctx.plugins.submit_hooks:  # e.g. instant feedback (grading/instant)
            info.update(await self.run(self.ctx.plugins.run_after_submit, info, self.core))
        info.pop("blob_path", None)
        self.write_json(info, status=200 if info["duplicate"] else 201)

    def on_finish(self) -> None:
        if self.request.method == "POST" and self.get_status() >= 400:
            metrics.SUBMISSIONS_REFUSED.labels(metrics.refused_reason(self.get_status())).inc()
        super().on_finish()

    async def get(self, course_id: str, assignment_id: str) -> None:
        rows = await self.run(self.core.submissions, self.caller, course_id, assignment_id,
                              self.param("student"), self.flag("mine"))
        self.write_json([_public(r) for r in rows])


class SubmissionListHandler(BaseHandler):
    async def get(self) -> None:
        rows = await self.run(self.core.submissions, self.caller, self.param("course"), self.param("assignment"),
                              self.param("student"), self.flag("mine"))
        self.write_json([_public(r) for r in rows])


class CollectionHandler(BaseHandler):
    async def get(self, course_id: str, assignment_id: str) -> None:
        due_arg = self.param("duedate")
        try:
            fallback = dt.datetime.fromisoformat(due_arg) if due_arg else None
        except ValueError:
            raise ServiceError(400, f"invalid duedate {due_arg!r}: use ISO 8601") from None
        if fallback is not None and fallback.tzinfo is None:
            fallback = fallback.replace(tzinfo=dt.UTC)
        rows = await self.run(self.core.collection, self.caller, course_id, assignment_id,
                              before_duedate=self.flag("before_duedate"),
                              student_id=self.param("student"), fallback_due=fallback)
        self.write_json([_public(r) for r in rows])

    async def post(self, course_id: str, assignment_id: str) -> None:
        data = parse_body(self.request.body)
        raw = data.get("ids", []) if isinstance(data, dict) else None
        if not isinstance(raw, list) or len(raw) > 10_000:
            raise ServiceError(400, 'send {"ids": [submission ids]} (at most 10,000)')
        ids = [int_param(i, "each id") for i in raw]
        infos, chunks = await self.run(self.core.collection_stream, self.caller, course_id, assignment_id, ids)
        # Streamed: the first chunk decides the status; later blobs are read while earlier ones
        # travel, so the client unpacks while the service reads (one request for a whole class).
        first = await self.run(next, chunks, b"")
        self.set_header("Content-Type", "application/x-tar")
        self.set_header("Cache-Control", "no-store")
        while first:
            self.write(first)
            await self.flush()
            first = await self.run(next, chunks, b"")
        self.finish()
        if infos:  # after the response: the hooks (autograde jobs) never slow the collect itself
            event = CollectedEvent(course_id, assignment_id, self.caller.name, infos)
            IOLoop.current().run_in_executor(self.ctx.executor, self.ctx.plugins.run_after_collect, event,
                                             self.core)


@web.stream_request_body
class FeedbackReleaseHandler(UploadMixin, BaseHandler):
    async def put(self, course_id: str, assignment_id: str, student_id: str) -> None:
        timestamp = self.param("timestamp")
        if not timestamp:
            raise ServiceError(400, "the submission's timestamp is required (?timestamp=...)")
        secret = short_param(self.request.headers.get("X-Submission-Secret") or None, "X-Submission-Secret")
        info = await self.run(self.core.release_feedback, self.caller, course_id, assignment_id, student_id,
                              timestamp, self.body(), secret)
        self.write_json(info, status=201)


class FeedbackHandler(BaseHandler):
    course_scoped = True
    async def get(self, course_id: str, assignment_id: str) -> None:
        data = await self.run(self.core.feedback_archive, self.caller, course_id, assignment_id,
                              self.param("student"))
        self.write_tar(data)


class EventsHandler(BaseHandler):
    async def get(self, course_id: str) -> None:
        self.write_json(await self.run(self.core.events, self.caller, course_id))


class MetricsHandler(BaseHandler):
    """Prometheus metrics for a hub token with `read:metrics` (a Prometheus service's role)."""

    public = True  # not a course user: checked below against the token's scopes instead

    async def get(self) -> None:
        if not self.request.headers.get("Authorization"):
            raise ServiceError(401, "Metrics need a hub token with the read:metrics scope "
                                    "(Authorization: token ...).")
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            raise ServiceError(401, "The token was not accepted by the hub.")
        if METRICS_SCOPE not in (model.get("scopes") or []):
            raise ServiceError(403, "This token lacks the read:metrics scope.")
        await self.run(self.ctx.refresh_metrics)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(metrics.exposition())


class NotFoundHandler(BaseHandler):
    """Unknown routes: a JSON 404 with the same headers as every other answer."""

    public = True

    def prepare(self) -> None:  # type: ignore[override]
        raise ServiceError(404, "There is nothing at this address in the grading service.")


class HomeHandler(BaseHandler):
    """A minimal page for browsers (OAuth): who you are and your courses."""

    token_only = False

    async def get(self) -> None:
        if self.caller is None:
            return  # redirected to the hub's login
        courses = await self.run(self.core.courses_of, self.caller)
        items = "".join(
            f"<li>{xhtml_escape(c['course_id'])}: {xhtml_escape(', '.join(c['roles']))}</li>"
            for c in courses
        )
        self.finish(f"<!doctype html><title>coursehub grading</title><h1>coursehub grading service</h1>"
                    f"<p>Signed in as {xhtml_escape(self.caller.name)}.</p><ul>{items}</ul>")


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "blob_path"}


def api_handlers(prefix: str) -> list[tuple[str, type]]:
    """The exchange routes under `prefix` (which ends with '/')."""
    seg = r"([^/]+)"
    api = f"{prefix}api"
    return [
        (f"{prefix}health", HealthHandler),
        (f"{prefix}metrics", MetricsHandler),
        (f"{api}/courses", CoursesHandler),
        (f"{api}/releases", ReleasesHandler),
        (f"{api}/submissions", SubmissionListHandler),
        (f"{api}/courses/{seg}/events", EventsHandler),
        (f"{api}/courses/{seg}/assignments/{seg}/release", ReleaseHandler),
        (f"{api}/courses/{seg}/assignments/{seg}/submissions", SubmissionsHandler),
        (f"{api}/courses/{seg}/assignments/{seg}/collection", CollectionHandler),
        (f"{api}/courses/{seg}/assignments/{seg}/feedback", FeedbackHandler),
        (f"{api}/courses/{seg}/assignments/{seg}/feedback/{seg}", FeedbackReleaseHandler),
        (f"{prefix}?", HomeHandler),
    ]
