"""The LTI launch seam: make a released assignment available in a user's running server.

The hub's launch handler (platform/lti) calls `fetch_for_launch(request)` after the user's server
is ready. It asks the user's own server (with a short-lived token for that server) whether the
assignment folder exists and, if not, to fetch it through the Assignments panel's endpoint,
which runs our nbgrader plugin inside the server: the grading service sees the user's own hub
token, checks their course role and that the assignment is released. Returns the folder relative
to the server's root ("<course>/<assignment>", nbgrader's path_includes_course layout), or None
when it could not be fetched (the launch then falls back or says so).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urlencode

from coursehub.platform.httpclient import ResponseTooLarge, request

log = logging.getLogger("coursehub.grading.exchange.launch")

#: tornado's default connect timeout, which these calls had before the shared client.
CONNECT_TIMEOUT = 20.0
#: The contents model without content and the fetch's JSON answer are small.
MAX_BYTES = 1024 * 1024


async def fetch_for_launch(req: Any) -> str | None:
    """`req` is platform.lti.opening.FetchRequest (username, course, assignment, server_url, token)."""
    if not req.token:
        return None
    folder = f"{req.course.id}/{req.assignment}"
    base = req.server_url.rstrip("/") + "/"
    headers = {"Authorization": f"token {req.token}"}
    contents = f"{base}api/contents/{quote(folder)}?content=0"
    try:
        r = await request("GET", contents, headers=headers, connect_timeout=CONNECT_TIMEOUT, request_timeout=30,
                          max_bytes=MAX_BYTES, follow_redirects=True)
        if r.ok:
            return folder  # already there: never overwrite a student's work
        if r.status != 404:
            log.warning("checking %s in %s's server failed: HTTP %s %s", folder, req.username, r.status, r.error)
            return None
        body = urlencode({"course_id": req.course.id, "assignment_id": req.assignment})
        r = await request("POST", f"{base}assignments/fetch", body=body, connect_timeout=CONNECT_TIMEOUT,
                          headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                          request_timeout=120, max_bytes=MAX_BYTES, follow_redirects=True)
    except ResponseTooLarge as e:
        log.warning("fetching %s into %s's server failed: %s", folder, req.username, e)
        return None
    if not r.ok:
        log.warning("fetching %s into %s's server failed: HTTP %s %s", folder, req.username, r.status, r.error)
        return None
    result = json.loads(r.body or b"{}")
    if not result.get("success"):
        log.warning("fetching %s into %s's server failed: %s", folder, req.username,
                    str(result.get("value", ""))[-500:])
        return None
    return folder
