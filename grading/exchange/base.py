"""The common part of coursehub's nbgrader Exchange plugin: talking to the grading service.

Every request carries the server's hub token (`$JUPYTERHUB_API_TOKEN`); the service derives the
user and the time from it and its own clock. Errors from the service become `ExchangeError`s with
the service's message, which nbgrader shows to the user (CLI, Assignments panel, formgrader).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import requests
from nbgrader.exchange.abc import Exchange as ABCExchange
from traitlets import Bool, Float, Integer, Unicode, default

RETRY_STATUSES = {502, 503, 504}


class CoursehubExchange(ABCExchange):
    """Base of all coursehub exchange classes; configure it as `c.CoursehubExchange.*`."""

    service_url = Unicode(
        help="Base URL of the grading service, e.g. http://127.0.0.1:8090/services/grading/ "
        "(default: $COURSEHUB_GRADING_URL)."
    ).tag(config=True)

    @default("service_url")
    def _service_url_default(self) -> str:
        return os.environ.get("COURSEHUB_GRADING_URL", "")

    api_token = Unicode(help="JupyterHub token sent to the service (default: $JUPYTERHUB_API_TOKEN).").tag(
        config=True
    )

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    path_includes_course = Bool(
        False,
        help="Put fetched assignments in <course>/<assignment> instead of <assignment> (as nbgrader's "
        "Exchange.path_includes_course).",
    ).tag(config=True)

    timeout = Float(120.0, help="Seconds to wait for the grading service per request.").tag(config=True)
    retries = Integer(4, help="Attempts for requests that are safe to repeat (uploads carry a retry key).").tag(
        config=True
    )

    # --- HTTP ---------------------------------------------------------------------------------
    def api(
        self, method: str, path: str, *, params: dict | None = None, data: bytes | None = None,
        json_body: Any = None, headers: dict | None = None, retry: bool = False, ok: tuple = (200, 201),
        allow: tuple = (),
    ) -> requests.Response:
        """Call the service; returns the response (status in `ok` or `allow`), else fails."""
        if not self.service_url:
            self.fail("The grading service is not configured (CoursehubExchange.service_url is empty); "
                      "ask your course's administrator.")
        url = self.service_url.rstrip("/") + "/api/" + path.lstrip("/")
        hdrs = {"Authorization": f"token {self.api_token}", **(headers or {})}
        attempts = max(1, self.retries if retry else 1)
        last = ""
        for attempt in range(attempts):
            try:
                r = requests.request(method, url, params=params, data=data, json=json_body, headers=hdrs,
                                     timeout=self.timeout)
            except requests.RequestException as e:
                last = f"could not reach the grading service ({type(e).__name__})"
                r = None
            if r is not None and r.status_code not in RETRY_STATUSES:
                break
            if r is not None:
                last = self._message(r)
            if attempt + 1 < attempts:
                time.sleep(min(0.5 * 2**attempt, 5.0))
        else:
            self.fail(f"The grading service is unavailable: {last}. Please try again in a moment.")
        if r.status_code in ok or r.status_code in allow:
            return r
        self.fail(self._message(r))
        raise AssertionError("unreachable")

    @staticmethod
    def _message(r: requests.Response) -> str:
        try:
            return str(r.json().get("error") or r.reason)
        except (ValueError, AttributeError):
            return f"HTTP {r.status_code} {r.reason}"

    # --- nbgrader conventions -----------------------------------------------------------------
    def require_course(self) -> str:
        if not self.coursedir.course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        return self.coursedir.course_id

    def local_dir(self, course_id: str, assignment_id: str) -> str:
        """Where a student's copy of an assignment lives (nbgrader's layout)."""
        if self.path_includes_course:
            return os.path.join(self.assignment_dir, course_id, assignment_id)
        return os.path.join(self.assignment_dir, assignment_id)

    def start(self) -> Any:
        if sys.platform == "win32":
            self.fail("Sorry, the exchange is not available on Windows.")
        return super().start()


def header_json(r: requests.Response, name: str) -> dict:
    try:
        return json.loads(r.headers.get(name, "{}"))
    except ValueError:
        return {}
