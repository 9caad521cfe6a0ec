"""Tornado handlers of the instructor dashboard, mounted in the grading service under its prefix:

    GET  dashboard/<course>/                 the page (instructors and TAs; students get 403)
    GET  dashboard/<course>/export?format=csv|canvas|xlsx[&long=1]
    POST dashboard/<course>/sync/now         queue changed grades and send what is due
    POST dashboard/<course>/sync/retry       failed grade-sync rows back to pending (all, or id=)
    POST dashboard/<course>/jobs/retry       a dead grading job back to the queue (id=)
    POST dashboard/<course>/jobs/accept-environment
                                             grade anyway a submission refused as made in another
                                             environment (id= the refusing job): queued again with
                                             accept_environment_mismatch
    POST dashboard/<course>/roster/sync      read the LMS roster (NRPS) into the gradebook

Browser pages use the hub's OAuth cookie; POST forms carry the hub's `_xsrf` token.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from tornado import web
from tornado.web import create_signed_value, decode_signed_value

from coursehub.grading.service.core import ServiceError
from coursehub.grading.service.handlers import BaseHandler
from coursehub.grading.service.inputs import bounded, int_param
from coursehub.platform.courses import COURSE_ID_ROUTE

log = logging.getLogger("coursehub.grading.dashboard")
COURSE = COURSE_ID_ROUTE
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "canvas": ("text/csv; charset=utf-8", "csv"),
           "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")}


@lru_cache(maxsize=1)
def _default_settings():  # noqa: ANN202
    from coursehub.platform.settings import load_settings

    return load_settings(None)


def gradebook_url_for(settings: Any, course_id: str) -> str:
    """The course's gradebook (one rule for the dashboard, the LMS sync and the export)."""
    from coursehub.grading.gradebook import course_gradebook_url

    return course_gradebook_url(settings, course_id)


def load_course_grades(settings: Any, course: Any):  # noqa: ANN201
    from coursehub.grading.export import load_grades

    return load_grades(db_url=gradebook_url_for(settings, course.id), course=course)


def gather(settings: Any, core: Any, caller: Any, course: Any):  # noqa: ANN201 - data.Overview
    """Everything the page shows; a missing part becomes a line in `problems`, not an error page."""
    from coursehub.grading.export.snapshot import GradebookMissing
    from coursehub.grading.lms.outbox import failed_rows, status_counts
    from coursehub.grading.lms.runtime import outbox_sessions

    from .data import build_overview

    problems: list[str] = []
    try:
        grades = load_course_grades(settings, course)
    except GradebookMissing:
        grades = None
        problems.append("No gradebook yet: nothing has been autograded in this course.")
    releases = core.releases(caller, course.id)
    submissions = core.submissions(caller, course.id)
    queue: dict[str, int] = {}
    dead: list[dict] = []
    mismatched: list[dict] = []
    sync: dict[str, int] = {}
    sync_status: dict[tuple[str, str], str] = {}
    failed: list[dict] = []
    sessions = outbox_sessions(settings)
    try:
        from coursehub.grading.queue.models import GradingJob

        with sessions() as s:
            queue = dict(s.execute(select(GradingJob.status, func.count()).where(GradingJob.course_id == course.id)
                                   .group_by(GradingJob.status)).all())
            dead = [{"id": j.id, "student": j.student, "assignment": j.assignment, "attempts": j.attempts,
                     "last_error": j.last_error} for j in s.scalars(
                select(GradingJob).where(GradingJob.course_id == course.id, GradingJob.status == "dead")
                .order_by(GradingJob.id.desc()).limit(200))]
            mismatched = environment_mismatches(s, course.id)
    except (OperationalError, ProgrammingError, ImportError):
        problems.append("The grading queue is not set up in this database (run: coursehub grading-db upgrade).")
    try:
        with sessions() as s:
            sync = status_counts(s, course.id)
            sync_status = newest_sync_status(s, course.id)
            failed = [{"id": r.id, "student": r.student, "assignment": r.assignment, "score_given": r.score_given,
                       "score_maximum": r.score_maximum, "last_error": r.last_error}
                      for r in failed_rows(s, course.id)]
    except (OperationalError, ProgrammingError):
        problems.append("The LMS grade sync tables are missing (run: coursehub grading-db upgrade).")
    from coursehub.grading.envparity import graded_environments

    environments = graded_environments(Path(settings.state_dir) / "course-dirs" / course.id)
    return build_overview(course, grades, releases, submissions, queue=queue, dead_jobs=dead, sync=sync,
                          sync_failed=failed, problems=problems, sync_status=sync_status, environments=environments,
                          mismatched=mismatched)


def _newest_jobs(course_id: str) -> Any:
    """The newest job of each (assignment, student) of the course, superseded ones left out."""
    from coursehub.grading.queue.models import SUPERSEDED, GradingJob

    return (select(func.max(GradingJob.id)).where(GradingJob.course_id == course_id, GradingJob.status != SUPERSEDED)
            .group_by(GradingJob.assignment, GradingJob.student))


def environment_mismatches(s: Any, course_id: str, job_id: int | None = None) -> list[dict]:
    """Submissions whose newest job ended with the status environment-mismatch (made in another
    environment or kernel than the course's: not graded), waiting for the instructor: the student
    resubmits, or "Grade anyway" queues the submission again with the mismatch accepted. With
    `job_id`, only that job, if it is such a one."""
    from coursehub.grading.envparity import MISMATCH
    from coursehub.grading.queue.models import DONE, GradingJob

    q = select(GradingJob.id, GradingJob.student, GradingJob.assignment, GradingJob.result).where(
        GradingJob.id.in_(_newest_jobs(course_id)), GradingJob.status == DONE)
    if job_id is not None:
        q = q.where(GradingJob.id == job_id)
    return [{"id": jid, "student": student, "assignment": assignment,
             "reason": str((result or {}).get("error") or "")}
            for jid, student, assignment, result in s.execute(q.order_by(GradingJob.assignment, GradingJob.student))
            if isinstance(result, dict) and result.get("status") == MISMATCH]


def newest_sync_status(s: Any, course_id: str) -> dict[tuple[str, str], str]:
    """(student, assignment) -> the status of the newest LMS outbox row (a newer grade replaces an older)."""
    from coursehub.grading.lms.models import ScoreRow

    rows = s.execute(select(ScoreRow.student, ScoreRow.assignment, ScoreRow.status)
                     .where(ScoreRow.course_id == course_id).order_by(ScoreRow.id)).all()
    return {(student, assignment): status for student, assignment, status in rows}


#: Signs the dashboard's status lines: a `?msg=` someone else made up (a link in a phishing mail)
#: is never shown. Per process: after a restart an old status line is simply not shown.
_FLASH_KEY = secrets.token_bytes(32)
FLASH_MAX_AGE_DAYS = 1 / 24 / 6  # ten minutes


def flash(message: str) -> str:
    return create_signed_value(_FLASH_KEY, "msg", message).decode()


def unflash(value: str) -> str:
    """The message of a `flash` value this process made in the last ten minutes, else ""."""
    if not value:
        return ""
    raw = decode_signed_value(_FLASH_KEY, "msg", value, max_age_days=FLASH_MAX_AGE_DAYS)
    return raw.decode("utf-8", "replace") if raw else ""


class DashboardBase(BaseHandler):
    token_only = False  # a browser page: the hub's OAuth cookie (and its _xsrf for POST)

    def check_xsrf_cookie(self) -> None:
        """Forms from the page carry the `_xsrf` token; a request with an Authorization header
        (a hub token, which a cross-site form cannot send) needs none."""
        if self.request.headers.get("Authorization"):
            return
        return super().check_xsrf_cookie()

    @property
    def cfg(self) -> Any:
        return self.settings.get("coursehub_settings") or _default_settings()

    def staff_course(self, course_id: str) -> Any:
        return self.core.require_staff(self.caller, course_id, "use the course dashboard")

    def base(self, course_id: str) -> str:
        prefix = self.request.path.split("/dashboard/", 1)[0]
        return f"{prefix}/dashboard/{quote(course_id)}/"

    def back(self, course_id: str, message: str) -> None:
        """Back to the page with a status line only this service can write (see `flash`)."""
        self.redirect(self.base(course_id) + "?" + urlencode({"msg": flash(message)}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, ServiceError) else (
            exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else "Something went wrong.")
        if isinstance(exc, ServiceError):
            self.set_status(exc.status)
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(int(exc.retry_after)))
        from html import escape

        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"<!doctype html><title>{self.get_status()}</title><h1>{self.get_status()}</h1>"
                    f"<p>{escape(bounded(message, 2000))}</p>")


class DashboardPage(DashboardBase):
    async def get(self, course_id: str) -> None:
        course = self.staff_course(course_id)
        overview = await self.run(gather, self.cfg, self.core, self.caller, course)
        from .page import render_page

        hub_prefix = (self.hub_auth.hub_prefix or "/hub/").rstrip("/")
        html = await self.run(render_page, overview, base=self.base(course_id),
                              xsrf=self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
                              formgrader_url=f"{hub_prefix}/user-redirect/formgrader",
                              message=bounded(unflash(self.get_argument("msg", "")[:4000]), 500),
                              hub_home=f"{hub_prefix}/home", sort=self.get_argument("sort", "name")[:200],
                              descending=self.get_argument("order", "") == "desc",
                              query=self.get_argument("q", "")[:200], only_late=self.get_argument("late", "") == "1")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(html)


class DashboardExport(DashboardBase):
    async def get(self, course_id: str) -> None:
        course = self.staff_course(course_id)
        fmt = self.get_argument("format", "csv")
        long = self.flag("long")
        if fmt not in FORMATS or (fmt == "canvas" and long):
            raise ServiceError(400, "format must be csv, canvas or xlsx (long only with csv or xlsx)")
        data = await self.run(self._export, course, fmt, long)
        ctype, ext = FORMATS[fmt]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
        name = f"{course.id}-grades{'-long' if long else ''}{'-canvas' if fmt == 'canvas' else ''}-{stamp}.{ext}"
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("Cache-Control", "no-store")
        self.finish(data)

    def _export(self, course: Any, fmt: str, long: bool) -> bytes:
        from coursehub.grading.export import canvas_table, long_table, wide_table
        from coursehub.grading.export.snapshot import GradebookMissing
        from coursehub.grading.export.writers import csv_bytes, xlsx_bytes

        try:
            grades = load_course_grades(self.cfg, course)
        except GradebookMissing:
            raise ServiceError(404, "No gradebook yet: nothing has been autograded in this course.") from None
        table = canvas_table(grades) if fmt == "canvas" else (long_table(grades) if long else wide_table(grades))
        return xlsx_bytes({"grades": table}) if fmt == "xlsx" else csv_bytes(table)


class SyncRetry(DashboardBase):
    async def post(self, course_id: str) -> None:
        self.staff_course(course_id)
        from coursehub.grading.lms.outbox import retry_failed
        from coursehub.grading.lms.runtime import outbox_sessions

        raw = self.get_arguments("id")
        if len(raw) > 10_000:
            raise ServiceError(400, "too many ids")
        ids = [int_param(i, "id") for i in raw] or None

        def retry() -> int:
            with outbox_sessions(self.cfg)() as s:
                return retry_failed(s, course_id, ids)

        n = await self.run(retry)
        log.info("grade sync retry in %s by %s: %d row(s)", course_id, self.caller.name, n)
        self.back(course_id, f"{n} grade(s) will be sent again.")


class SyncNow(DashboardBase):
    async def post(self, course_id: str) -> None:
        course = self.staff_course(course_id)
        from coursehub.grading.export.snapshot import GradebookMissing
        from coursehub.grading.lms.gradesync import enqueue_changes
        from coursehub.grading.lms.runtime import LmsNotConfigured, outbox_sessions, shared_sender

        def queue() -> int:
            grades = load_course_grades(self.cfg, course)
            titles = {a.id: a.title for a in course.assignments if a.title}
            with outbox_sessions(self.cfg)() as s:
                return enqueue_changes(s, course.id, grades.long, dt.datetime.now(dt.UTC), titles)

        try:
            n = await self.run(queue)
        except GradebookMissing:
            return self.back(course_id, "No gradebook yet: nothing to send.")
        try:
            sender = shared_sender(self.cfg)
        except LmsNotConfigured as e:
            return self.back(course_id, f"{n} changed grade(s) queued; not sent: {e}.")
        out = await sender.send_due()
        waiting = out.get("deferred", 0) + out.get("busy", 0)
        self.back(course_id, f"{n} changed grade(s) queued; sent now: {out.get('sent', 0)}, "
                             f"to retry: {out.get('retry', 0)}, failed: {out.get('failed', 0)}"
                             + (f", waiting (being sent or the LMS asked us to wait): {waiting}" if waiting else "")
                             + ".")


class RosterSync(DashboardBase):
    async def post(self, course_id: str) -> None:
        course = self.staff_course(course_id)
        from coursehub.grading.lms.runtime import LmsNotConfigured, sync_course_roster
        from coursehub.grading.lms.services import LmsServiceError

        try:
            reports = await sync_course_roster(self.cfg, course.id, gradebook_url_for(self.cfg, course.id))
        except (LmsNotConfigured, LmsServiceError, ValueError) as e:
            return self.back(course_id, f"Roster not updated: {e}.")
        joined = sum(len(r.joined) for r in reports)
        left = sum(len(r.left) for r in reports)
        incomplete = [r.problem for r in reports if not r.complete]
        self.back(course_id, f"Roster updated: {sum(r.members for r in reports)} members, {joined} joined, "
                             f"{left} marked as left" + (f" (incomplete: {incomplete[0]})" if incomplete else "") + ".")


class JobRetry(DashboardBase):
    async def post(self, course_id: str) -> None:
        self.staff_course(course_id)
        job_id = int_param(self.get_argument("id", ""), "id")
        from coursehub.grading.lms.runtime import outbox_sessions
        from coursehub.grading.queue.models import GradingJob

        def retry() -> bool:
            with outbox_sessions(self.cfg)() as s:
                job = s.get(GradingJob, job_id)
                if job is None or job.course_id != course_id or job.status != "dead":
                    return False
            from coursehub.grading.queue import JobQueue

            return JobQueue(outbox_sessions(self.cfg).kw["bind"]).retry_dead(job_id)

        ok = await self.run(retry)
        self.back(course_id, "The job is queued again." if ok else "That job cannot be retried.")


class JobAcceptEnvironment(DashboardBase):
    """"Grade anyway (accept environment)": the instructor accepts that a submission was made in
    another environment or kernel than the course's; the worker grades it (envparity.ACCEPT_MISMATCH)."""

    async def post(self, course_id: str) -> None:
        self.staff_course(course_id)
        job_id = int_param(self.get_argument("id", ""), "id")
        from coursehub.grading.envparity import ACCEPT_MISMATCH
        from coursehub.grading.lms.runtime import outbox_sessions
        from coursehub.grading.queue import JobQueue
        from coursehub.grading.queue.models import GradingJob

        def accept() -> tuple[GradingJob | None, int | None]:
            with outbox_sessions(self.cfg)() as s:
                job = s.get(GradingJob, job_id)
                if job is None or job.course_id != course_id:
                    return None, None
                if not environment_mismatches(s, course_id, job_id):  # graded, resubmitted or queued since
                    return job, None
                payload = {**(job.payload or {}), ACCEPT_MISMATCH: True}
            queue = JobQueue(outbox_sessions(self.cfg).kw["bind"], max_attempts=self.cfg.grading.max_attempts)
            return job, queue.enqueue(course_id, job.assignment, job.student, payload=payload)

        job, new_id = await self.run(accept)
        if job is None:
            raise ServiceError(404, "No such grading job in this course.")
        if new_id is None:
            return self.back(course_id, "That submission is not waiting for an environment decision (graded, "
                                        "resubmitted or queued since).")
        log.info("environment mismatch accepted in %s by %s: %s/%s (job %s, new job %s)", course_id,
                 self.caller.name, job.student, job.assignment, job_id, new_id)
        self.back(course_id, f"{job.student}'s {job.assignment} is queued to be graded anyway, in the course's "
                             "environment; its record keeps the environment it was made in.")


def dashboard_handlers() -> list[tuple]:
    """Routes relative to the grading service prefix."""
    return [
        (rf"dashboard/{COURSE}/?", DashboardPage),
        (rf"dashboard/{COURSE}/export", DashboardExport),
        (rf"dashboard/{COURSE}/sync/retry", SyncRetry),
        (rf"dashboard/{COURSE}/sync/now", SyncNow),
        (rf"dashboard/{COURSE}/jobs/retry", JobRetry),
        (rf"dashboard/{COURSE}/jobs/accept-environment", JobAcceptEnvironment),
        (rf"dashboard/{COURSE}/roster/sync", RosterSync),
    ]
