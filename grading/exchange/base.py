"""The common part of coursehub's nbgrader Exchange plugin: talking to the grading service.

Every request carries the server's hub token (`$JUPYTERHUB_API_TOKEN`); the service derives the
user and the time from it and its own clock. Errors from the service become `ExchangeError`s with
the service's one-sentence message, which nbgrader shows to the user (CLI, Assignments panel,
formgrader). Timeouts are short and retries are urllib3's (honouring Retry-After), so a slow or
hung service makes a call fail within seconds instead of holding the user's server for minutes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import requests
from nbgrader.exchange.abc import Exchange as ABCExchange
from nbgrader.exchange.abc.exchange import ExchangeError
from requests.adapters import HTTPAdapter
from traitlets import Bool, Float, Integer, Unicode, default
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({502, 503, 504})
UNAVAILABLE = ("Assignments are temporarily unavailable (the grading service is not answering); "
               "your work in this server is safe, so please try again in a minute.")


class ServiceUnavailable(ExchangeError):
    """The grading service did not answer in time (or said it is unavailable)."""


class CappedRetry(Retry):
    """urllib3's Retry, but a server's Retry-After never makes a call wait longer than `max_wait`."""

    max_wait = 10.0

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.max_wait)


def retry_policy(attempts: int) -> Retry:
    """Retries for a call that is safe to repeat (uploads carry a retry key): connection failures
    and 502/503/504, with exponential backoff and the server's Retry-After; never a read timeout
    (a hung service would only make the person wait longer)."""
    again = max(0, attempts - 1)
    return CappedRetry(total=again, connect=again, read=0, status=again, other=0,
                       status_forcelist=RETRY_STATUSES, allowed_methods=None, backoff_factor=0.5,
                       backoff_max=5.0, respect_retry_after_header=True, raise_on_status=False)


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

    connect_timeout = Float(3.0, help="Seconds to wait for a connection to the grading service.").tag(config=True)
    read_timeout = Float(10.0, help="Seconds to wait for the service's answer (lists, downloads).").tag(config=True)
    upload_timeout = Float(
        60.0, help="Seconds to wait for the service's answer to an upload (submit, release, collect)."
    ).tag(config=True)
    retries = Integer(3, help="Attempts for requests that are safe to repeat (uploads carry a retry key).").tag(
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
        read = self.upload_timeout if method in ("POST", "PUT") else self.read_timeout
        try:
            with requests.Session() as session:
                session.mount(url, HTTPAdapter(max_retries=retry_policy(self.retries if retry else 1)))
                r = session.request(method, url, params=params, data=data, json=json_body, headers=hdrs,
                                    timeout=(self.connect_timeout, read))
        except requests.RequestException as e:
            self.log.warning("%s %s failed: %s", method, url, type(e).__name__)
            self.unavailable()
        if r.status_code in RETRY_STATUSES:
            self.log.warning("%s %s: HTTP %d %s", method, url, r.status_code, self._message(r))
            self.unavailable()
        if r.status_code in ok or r.status_code in allow:
            return r
        self.fail(self._message(r))
        raise AssertionError("unreachable")

    def unavailable(self) -> None:
        self.log.error(UNAVAILABLE)
        raise ServiceUnavailable(UNAVAILABLE)

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
