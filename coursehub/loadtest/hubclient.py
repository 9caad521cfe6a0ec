"""One person's browser-like session with the hub: the launch through the test LMS, following the
hub's redirects to the notebook, and the hub API calls a browser's JavaScript would make."""

from __future__ import annotations

import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from .platform import TestPlatform

_MARKER = re.compile(r'id="(lti-[a-z-]+)"')
_USER_URL = re.compile(r"/user/([^/?#]+)/")


class StepFailed(Exception):
    """A step did not give what a browser would need next; `reason` is short and stable (it is
    counted in the report), never a token or a user name."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _remaining(deadline: float, cap: float = 60.0) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise StepFailed("timed out (hard time limit)")
    return min(cap, left)


def cookie(session: requests.Session, name: str, path: str) -> str | None:
    """The cookie `name` set for `path` (the hub and each user server set their own `_xsrf`)."""
    for c in session.cookies:
        if c.name == name and c.path.rstrip("/") == path.rstrip("/"):
            return c.value
    return None


def where(url: str) -> str:
    """A URL without its query, with user names replaced: a stable failure reason."""
    path = urlparse(url).path
    return _USER_URL.sub("/user/<name>/", re.sub(r"/hub/(spawn-pending|spawn)/[^/]+", r"/hub/\1/<name>", path))


class HubSession:
    """A person signed in to the hub through LTI launches, as their browser would be."""

    def __init__(self, hub_url: str, platform: TestPlatform, sub: str, role: str = "student"):
        self.hub_url = hub_url.rstrip("/")
        self.platform = platform
        self.sub = sub
        self.role = role
        self.http = requests.Session()
        self.name: str | None = None
        self.opened: str | None = None  # what JupyterLab opened (a notebook's path), from its URL

    def launch(self, assignment: str | None, deadline: float) -> str:
        """An LTI 1.3 launch: login initiation, the LMS's signed answer, the hub's redirect."""
        target = f"{self.hub_url}/hub/coursehub/open?{urlencode({'course': self.platform.course_id})}"
        r = self.http.get(f"{self.hub_url}/hub/lti13/oauth_login", allow_redirects=False,
                          timeout=_remaining(deadline), params={
                              "iss": self.platform.issuer, "login_hint": secrets.token_urlsafe(12),
                              "target_link_uri": target, "client_id": self.platform.client_id,
                              "lti_deployment_id": self.platform.deployment_id})
        if r.status_code not in (302, 303):
            raise StepFailed(f"login initiation refused: HTTP {r.status_code}{_marker(r)}")
        auth = {k: v[0] for k, v in parse_qs(urlparse(r.headers["Location"]).query).items()}
        callback = auth.get("redirect_uri", "")
        if urlparse(callback).netloc != urlparse(self.hub_url).netloc:
            raise StepFailed("the hub's redirect_uri is not the target hub")  # never post a signed token elsewhere
        token = self.platform.id_token(sub=self.sub, name=f"Load test {self.sub}", role=self.role,
                                       nonce=auth.get("nonce", ""), target_link_uri=target, assignment=assignment)
        r = self.http.post(callback, data={"id_token": token, "state": auth.get("state", "")},
                           allow_redirects=False, timeout=_remaining(deadline))
        if r.status_code not in (302, 303):
            raise StepFailed(f"launch refused: HTTP {r.status_code}{_marker(r)}")
        return self._absolute(r.headers["Location"])

    def open(self, url: str, deadline: float) -> str:
        """Follow the hub from the launch's redirect (spawn, pending page, assignment fetch, OAuth)
        until JupyterLab's page answers; returns the user server's URL."""
        while True:
            r = self.http.get(url, allow_redirects=False, timeout=_remaining(deadline, 120))
            if r.status_code in (301, 302, 303, 307):
                url = self._absolute(r.headers["Location"])
                continue
            if r.status_code == 200 and "/spawn-pending/" in url:
                self.wait_for_server(url, deadline)
                continue
            if r.status_code == 200 and "/lab" in url and "jupyter-config-data" in r.text:
                match = _USER_URL.search(urlparse(url).path)
                if not match:
                    raise StepFailed("JupyterLab outside /user/")
                self.name = requests.utils.unquote(match[1])
                tree = urlparse(url).path.partition("/lab/tree/")[2]
                self.opened = requests.utils.unquote(tree) or None
                return url[:url.index(match[0]) + len(match[0])]
            raise StepFailed(f"HTTP {r.status_code} at {where(url)}{_marker(r)}")

    def wait_for_server(self, pending_url: str, deadline: float) -> None:
        """Wait on the hub's spawn-progress stream, as the pending page's JavaScript does, until it
        says the server is ready (or failed); then the caller reloads the page. Polls the page
        every 0.5 s instead when the stream is not available (an older hub, a proxy that buffers)."""
        name = urlparse(pending_url).path.rstrip("/").rsplit("/", 1)[-1]
        headers = {"X-XSRFToken": cookie(self.http, "_xsrf", "/hub/") or "", "Accept": "text/event-stream"}
        try:
            with self.http.get(f"{self.hub_url}/hub/api/users/{name}/server/progress", headers=headers,
                               stream=True, timeout=_remaining(deadline, 120)) as r:
                if r.status_code != 200:
                    raise requests.RequestException(f"HTTP {r.status_code}")
                for line in r.iter_lines(chunk_size=1, decode_unicode=True):  # events are small: no buffering
                    if line and line.startswith("data:") and _finished(line[5:]):
                        return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)

    def whoami(self, deadline: float) -> str:
        r = self.api("GET", "/user", deadline)
        self.name = r.json()["name"]
        return self.name

    def token(self, scopes: list[str], deadline: float, expires_in: int = 3600) -> str:
        """A token of this user (as the user creates one on the hub's token page)."""
        name = self.name or self.whoami(deadline)
        r = self.api("POST", f"/users/{name}/tokens", deadline,
                     json={"note": "coursehub loadtest", "expires_in": expires_in, "scopes": scopes})
        return r.json()["token"]

    def stop_server(self, deadline: float) -> None:
        if self.name:
            self.api("DELETE", f"/users/{self.name}/server", deadline, ok=(202, 204, 400))

    def api(self, method: str, path: str, deadline: float, ok: tuple[int, ...] = (200, 201),
            **kwargs: object) -> requests.Response:
        headers = {"X-XSRFToken": cookie(self.http, "_xsrf", "/hub/") or ""}
        r = self.http.request(method, f"{self.hub_url}/hub/api{path}", headers=headers,
                              timeout=_remaining(deadline), **kwargs)  # type: ignore[arg-type]
        if r.status_code not in ok:
            raise StepFailed(f"hub API {method} {re.sub(r'/users/[^/]+', '/users/<name>', path)}: HTTP {r.status_code}")
        return r

    def _absolute(self, location: str) -> str:
        return self.hub_url + location if location.startswith("/") else location


def _finished(data: str) -> bool:
    """Whether one progress event says the spawn is over (ready or failed)."""
    event = json.loads(data)
    return bool(isinstance(event, dict) and (event.get("ready") or event.get("failed")))


def _marker(r: requests.Response) -> str:
    match = _MARKER.search(r.text or "") if "html" in r.headers.get("Content-Type", "") else None
    return f" ({match[1]})" if match else ""
