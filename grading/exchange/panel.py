"""The Assignments panel's server side, as a Jupyter server extension that replaces nbgrader's
`assignment_list` extension (same routes, same JSON, so the stock Lab panel works unchanged).

Why: nbgrader's handlers call the exchange synchronously on the server's event loop, so a slow
grading service froze the whole server (Lab, saving, kernels). Here every exchange call runs in
one worker thread (nbgrader changes the process's working directory around each call, so calls
run one at a time), and the handler waits at most `ANSWER_WITHIN` seconds before saying that
assignments are temporarily unavailable. Failures arrive as one sentence, never a traceback.

Enable with `ServerApp.jpserver_extensions`: this module True and
`nbgrader.server_extensions.assignment_list` False (platform/userconfig.py does).
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_server.utils import url_path_join
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError, ExchangeFactory
from nbgrader.server_extensions.assignment_list import handlers as stock
from tornado import web

from .base import UNAVAILABLE
from .lateness import LateNotice, late_notice, shown_time

#: Seconds a panel request waits for the exchange before answering "temporarily unavailable".
ANSWER_WITHIN = 5.0
#: Seconds a submit (an upload) may take before the panel stops waiting for it.
SUBMIT_WITHIN = 90.0
#: A late submit is confirmed by pressing Submit again within this many seconds.
CONFIRM_WITHIN = 300.0

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coursehub-exchange")


def failure(e: BaseException) -> str:
    """One sentence for the person in front of the panel."""
    if isinstance(e, ExchangeError):
        text = " ".join(str(e).split())
        return text or "The exchange failed without saying why; the details are in the server log."
    return (f"Something went wrong in the Assignments panel ({type(e).__name__}); "
            "the details are in the server log.")


class CoursehubAssignmentList(stock.AssignmentList):
    """nbgrader's AssignmentList, with errors as one sentence and submits that warn when late."""

    def _exchange(self, role: str, course_id: str | None, assignment_id: str | None = None,
                  cached: bool = False, then: str = "start", args: tuple = ()) -> Any:
        """Build nbgrader's exchange app for `role` as nbgrader's handlers do; call its `then`."""
        with self.get_assignment_dir_config() as config:
            if role != "List":
                config = self.load_config()  # as nbgrader's fetch/submit do: the config where it runs
            if course_id:
                config.CourseDirectory.course_id = course_id
            if assignment_id:
                config.CourseDirectory.assignment_id = assignment_id
            if cached:
                config.ExchangeList.cached = True
            coursedir = CourseDirectory(config=config)
            authenticator = Authenticator(config=config)
            app = getattr(ExchangeFactory(config=config), role)(
                coursedir=coursedir, authenticator=authenticator, config=config)
            step = getattr(app, then, None)  # `deadline` only exists on coursehub's list
            return app, step(*args) if step else None

    def _guarded(self, role: str, course_id: str | None, assignment_id: str | None = None,
                 cached: bool = False, then: str = "start", args: tuple = ()) -> tuple[bool, Any]:
        try:
            return True, self._exchange(role, course_id, assignment_id, cached, then, args)
        except ExchangeError as e:
            self.log.warning("Assignments panel: %s", failure(e))
            return False, failure(e)
        except Exception as e:  # noqa: BLE001 - anything else is a bug: log it, say one sentence
            self.log.error("Assignments panel: %s", traceback.format_exc())
            return False, failure(e)

    def list_released_assignments(self, course_id: str | None = None) -> dict:
        ok, out = self._guarded("List", course_id)
        if not ok:
            return {"success": False, "value": out}
        assignments = out[1]
        for a in assignments:
            if a["status"] == "fetched":
                a["path"] = _rel(a["path"], self._root_dir)
                for nb in a["notebooks"]:
                    nb["path"] = _rel(nb["path"], self._root_dir)
        return {"success": True, "value": sorted(assignments, key=lambda x: (x["course_id"], x["assignment_id"]))}

    def list_submitted_assignments(self, course_id: str | None = None) -> dict:
        ok, out = self._guarded("List", course_id, cached=True)
        if not ok:
            return {"success": False, "value": out}
        assignments = out[1]
        for a in assignments:
            for s in a["submissions"]:
                if s["local_feedback_path"]:
                    s["local_feedback_path"] = _rel(s["local_feedback_path"], self._root_dir)
            a["submissions"] = sorted(a["submissions"], key=lambda x: x["timestamp"])
            for s in a["submissions"]:  # the panel's label: seconds, not nbgrader's microseconds
                s["timestamp"] = shown_time(s["timestamp"])
        return {"success": True, "value": sorted(assignments, key=lambda x: x["assignment_id"])}

    def fetch_assignment(self, course_id: str, assignment_id: str) -> dict:
        ok, out = self._guarded("FetchAssignment", course_id, assignment_id)
        return {"success": True} if ok else {"success": False, "value": out}

    def fetch_feedback(self, course_id: str, assignment_id: str) -> dict:
        ok, out = self._guarded("FetchFeedback", course_id, assignment_id)
        if not ok:
            return {"success": False, "value": out}
        if getattr(out[0], "feedback", None) == []:  # nbgrader says nothing; the panel would too
            return {"success": False, "value": f"There is no feedback for {assignment_id} yet; it appears here "
                                               "when your course staff return it."}
        return {"success": True}

    def submit_assignment(self, course_id: str, assignment_id: str) -> dict:
        ok, out = self._guarded("Submit", course_id, assignment_id)
        if not ok:
            return {"success": False, "value": out}
        answer = {"success": True, "receipt": getattr(out[0], "receipt", None)}
        info = getattr(out[0], "submission", None) or {}
        if info.get("instant_feedback") and info.get("id") is not None:
            answer["instant"] = {"submission_id": int(info["id"]), "assignment_id": assignment_id}
        return answer

    def instant_feedback(self, course_id: str, assignment_id: str, submission_id: int) -> dict:
        """The visible tests' results of one of the student's submissions, as the panel shows them."""
        ok, out = self._guarded("Submit", course_id, assignment_id, then="instant_result", args=(submission_id,))
        if not ok:
            return {"success": False, "value": out}
        return {"success": True, "value": instant_notice(assignment_id, out[1])}

    def late_notice(self, course_id: str, assignment_id: str) -> LateNotice | None:
        """The warning to show before a late submit (None when on time or the deadline is unknown)."""
        ok, out = self._guarded("List", course_id, assignment_id, then="deadline")
        return late_notice(out[1]) if ok else None


#: JupyterLab cuts a notification's message at 140 characters.
NOTIFY_CHARS = 140
LATER = "Hidden tests run only when your work is graded after the deadline; this is not your grade."


def instant_notice(assignment_id: str, record: dict) -> dict:
    """What the Lab plugin shows: a short `text` for the notification (JupyterLab keeps 140
    characters), `details` (one line per visible test) for its Details dialog, a `level`
    (success / warning / info) and whether the result is final (`done`: stop asking)."""
    status = record.get("status", "")
    if status == "pending":
        return {"done": False, "status": status, "level": "info", "text": "", "details": []}
    text = f"Instant feedback on {assignment_id}: {record.get('message') or 'no result.'}"
    if len(text) > NOTIFY_CHARS:
        text = text[:NOTIFY_CHARS - 1] + "\u2026"
    tests = record.get("tests") or []
    details = [f"{'PASS' if t.get('passed') else 'FAIL'} {t.get('cell_id')} ({t.get('points', 0):g} points)"
               + (f": {t['error']}" if t.get("error") and not t.get("passed") else "") for t in tests]
    details.append(LATER)
    failing = [t for t in tests if not t.get("passed")]
    level = "success" if status == "done" and tests and not failing else "warning" if failing else "info"
    return {"done": True, "status": status, "level": level, "text": text, "details": details,
            "passed": record.get("passed"), "total": record.get("total")}


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root)


async def in_worker(fn: Any, *args: Any, within: float) -> Any:
    """Run `fn` in the exchange's worker thread; None if it has not finished within `within` s
    (a call still queued then never runs; one already running finishes and is dropped)."""
    job = _EXECUTOR.submit(fn, *args)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(job), within)
    except TimeoutError:
        job.cancel()
        return None


UNAVAILABLE_ANSWER = {"success": False, "value": UNAVAILABLE}


class AssignmentListHandler(stock.BaseAssignmentHandler):
    @web.authenticated
    async def get(self) -> None:
        course_id = self.get_argument("course_id")
        out = await in_worker(self.manager.list_assignments, course_id, within=ANSWER_WITHIN)
        self.finish(json.dumps(out or UNAVAILABLE_ANSWER))


class CourseListHandler(stock.BaseAssignmentHandler):
    @web.authenticated
    async def get(self) -> None:
        out = await in_worker(self.manager.list_courses, within=ANSWER_WITHIN)
        self.finish(json.dumps(out or UNAVAILABLE_ANSWER))


class AssignmentActionHandler(stock.BaseAssignmentHandler):
    """fetch, submit and fetch_feedback. A failure answers with its sentence (nbgrader's fetch
    answered with the unchanged list, so a failed fetch looked like nothing happened)."""

    @web.authenticated
    async def post(self, action: str) -> None:
        try:
            data = {"assignment_id": self.get_argument("assignment_id"), "course_id": self.get_argument("course_id")}
        except web.MissingArgumentError:
            data = self.get_json_body() or {}
        course_id, assignment_id = data.get("course_id"), data.get("assignment_id")
        if not course_id or not assignment_id:
            raise web.HTTPError(400, "course_id and assignment_id are required")
        if action == "submit":
            warning = await self._late_warning(course_id, assignment_id)
            if warning:
                self.finish(json.dumps({"success": False, "value": warning, "late": True}))
                return
        method = {"fetch": self.manager.fetch_assignment, "submit": self.manager.submit_assignment,
                  "fetch_feedback": self.manager.fetch_feedback}[action]
        out = await in_worker(method, course_id, assignment_id,
                              within=SUBMIT_WITHIN if action == "submit" else ANSWER_WITHIN * 6)
        if out is None:
            out = {"success": False, "value": UNAVAILABLE}
        if not out["success"]:
            self.finish(json.dumps(out))
            return
        listing = await in_worker(self.manager.list_assignments, course_id, within=ANSWER_WITHIN)
        if listing is None or not listing["success"]:
            listing = {"success": True, "value": []}  # done; the panel's next refresh lists again
        if out.get("receipt"):
            listing["receipt"] = out["receipt"]
        if out.get("instant"):
            listing["instant"] = out["instant"]
        self.finish(json.dumps(listing))

    async def _late_warning(self, course_id: str, assignment_id: str) -> str | None:
        """The first Submit after the deadline answers with the warning; pressing Submit again
        within CONFIRM_WITHIN seconds submits (the stock panel has no confirmation dialog)."""
        notice = await in_worker(self.manager.late_notice, course_id, assignment_id, within=ANSWER_WITHIN)
        if notice is None:
            return None
        key = (course_id, assignment_id)
        pending = self.settings.setdefault("coursehub_late_confirmations", {})
        now = asyncio.get_running_loop().time()
        if now - pending.pop(key, -CONFIRM_WITHIN - 1) <= CONFIRM_WITHIN:
            return None
        pending[key] = now
        return f"{notice.text} Press Submit again to submit it anyway."


class InstantFeedbackHandler(stock.BaseAssignmentHandler):
    """GET ?course_id=&assignment_id=&submission_id=: the instant result, while the plugin polls."""

    @web.authenticated
    async def get(self) -> None:
        course_id, assignment_id = self.get_argument("course_id"), self.get_argument("assignment_id")
        raw = self.get_argument("submission_id")
        if not raw.isdigit() or len(raw) > 18:
            raise web.HTTPError(400, "submission_id must be a number")
        out = await in_worker(self.manager.instant_feedback, course_id, assignment_id, int(raw), within=ANSWER_WITHIN)
        self.finish(json.dumps(out or UNAVAILABLE_ANSWER))


HANDLERS = [
    (r"/assignments", AssignmentListHandler),
    (r"/assignments/instant", InstantFeedbackHandler),
    (r"/assignments/(?P<action>fetch|submit|fetch_feedback)", AssignmentActionHandler),
    (r"/courses", CourseListHandler),
    (r"/nbgrader_version", stock.NbGraderVersionHandler),
]


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "coursehub.grading.exchange.panel"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the panel's routes (and the formgrader's link fix) on the user's server."""
    from .formgrader_links import handlers as formgrader_handlers
    from .labpanel import add_to_lab

    webapp = server_app.web_app
    manager = CoursehubAssignmentList(parent=server_app)
    manager.root_dir = server_app.root_dir
    webapp.settings["assignment_list_manager"] = manager
    base_url = webapp.settings["base_url"]
    rules = [(url_path_join(base_url, pattern), handler) for pattern, handler in HANDLERS]
    rules += formgrader_handlers(base_url)
    webapp.add_handlers(".*$", rules)
    add_to_lab(server_app)
    server_app.log.info("coursehub: Assignments panel routes (exchange off the event loop)")
