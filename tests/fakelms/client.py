"""Drive a launch like a browser does, with requests: initiation, LMS auth page, form post."""

from __future__ import annotations

import html
import re

import requests

from .server import FakeLms, LaunchSpec

_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.S)
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def parse_form(page: str) -> tuple[str, dict[str, str]]:
    match = _FORM.search(page)
    if not match:
        raise AssertionError(f"no auto-post form in:\n{page[:2000]}")
    return html.unescape(match[1]), {html.unescape(k): html.unescape(v) for k, v in _INPUT.findall(page)}


def launch(session: requests.Session, hub_url: str, lms: FakeLms, spec: LaunchSpec | None = None,
           *, client_id: str | None = None, keep_form: list | None = None) -> requests.Response:
    """Run one launch; returns the hub's answer to the form post (redirects not followed)."""
    spec = spec or LaunchSpec()
    hint = lms.prepare(spec)
    r = session.get(lms.login_initiation(hub_url, hint, spec, client_id), timeout=30)
    if r.url.startswith(hub_url):  # the hub refused the initiation itself
        return r
    r.raise_for_status()
    action, fields = parse_form(r.text)
    if keep_form is not None:
        keep_form.append((action, fields, dict(session.cookies)))
    return session.post(action, data=fields, timeout=60, allow_redirects=False)


def signed_in(session: requests.Session) -> bool:
    return any(c.name.startswith("jupyterhub-") and "session" in c.name or c.name == "jupyterhub-hub-login"
               for c in session.cookies)


def follow_to_server(session: requests.Session, hub_url: str, location: str, timeout: float = 300) -> str:
    """Follow the hub's redirects (spawn, spawn-pending, open) like a browser until they leave the
    hub for the user's server (JupyterLab, nbgitpuller) or a service (the staff page); returns that URL. A page
    the hub answers with instead (e.g. "not released") raises PageInstead."""
    import time

    url = hub_url + location if location.startswith("/") else location
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = session.get(url, allow_redirects=False, timeout=60)
        if r.status_code in (301, 302, 303):
            nxt = r.headers["Location"]
            url = hub_url + nxt if nxt.startswith("/") else nxt
            if ("/user/" in url or "/services/" in url) and "/hub/" not in url:
                return url
            continue
        if r.status_code == 200 and "spawn-pending" in url:
            time.sleep(1)
            continue
        raise PageInstead(r)
    raise TimeoutError(url)


_LAB_LINK = re.compile(r'<a class="button" href="/user/([^/"]+)/lab" id="open-lab">')


def staff_landing(session: requests.Session, hub_url: str, location: str, course: str) -> str:
    """Follow a staff launch to the course's staff page (through the service's hub sign-in) and
    return the signed-in staff member's hub name, read from the page's link to their JupyterLab.
    Their server is running by then: the launch starts it before it lands."""
    page = follow_to_server(session, hub_url, location)
    assert page == f"{hub_url}/services/grading/course/{course}/staff", page
    r = session.get(page, timeout=60)
    assert r.status_code == 200 and r.url == page, (r.status_code, r.url)
    match = _LAB_LINK.search(r.text)
    assert match, r.text[:2000]
    return match[1]


class PageInstead(Exception):
    def __init__(self, response: requests.Response):
        super().__init__(f"HTTP {response.status_code} at {response.url}")
        self.response = response


def local_lms_launch(session: requests.Session, hub_url: str, *, course: str, kind: str, item: str,
                     role: str, person: str) -> requests.Response:
    """A launch from the hub's built-in LMS page, as its buttons do; the hub's answer to the form post."""
    session.get(f"{hub_url}/hub/lms", timeout=30).raise_for_status()
    r = session.post(f"{hub_url}/hub/lms/launch", timeout=60, data={
        "_xsrf": session.cookies.get("_xsrf", ""), "course": course, "kind": kind, "item": item,
        "role": role, "person": person})
    r.raise_for_status()
    action, fields = parse_form(r.text)
    return session.post(action, data=fields, allow_redirects=False, timeout=60)


def release_assignment(hub, instructor: str, assignment: str = "ps1") -> None:  # noqa: ANN001 - support.hub.Hub
    """Release with the formgrader in the instructor's running server (stock nbgrader + the coursehub
    exchange), as an instructor does after launching the assignment from the LMS."""
    headers = {"Authorization": f"token {hub.user_token(instructor)}"}
    for step in ("assign", "release"):
        r = requests.post(f"{hub.url}/user/{instructor}/formgrader/api/assignment/{assignment}/{step}",
                          headers=headers, timeout=300)
        if r.status_code != 200 or not r.json().get("success"):
            raise AssertionError(f"{step} of {assignment} failed: HTTP {r.status_code} {r.text[:2000]}")
