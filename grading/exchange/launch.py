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

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger("coursehub.grading.exchange.launch")


async def fetch_for_launch(req: Any) -> str | None:
    """`req` is platform.lti.opening.FetchRequest (username, course, assignment, server_url, token)."""
    if not req.token:
        return None
    folder = f"{req.course.id}/{req.assignment}"
    base = req.server_url.rstrip("/") + "/"
    headers = {"Authorization": f"token {req.token}"}
    client = AsyncHTTPClient()
    contents = f"{base}api/contents/{quote(folder)}?content=0"
    try:
        await client.fetch(HTTPRequest(contents, headers=headers, request_timeout=30))
        return folder  # already there: never overwrite a student's work
    except HTTPClientError as e:
        if e.code != 404:
            log.warning("checking %s in %s's server failed: HTTP %s", folder, req.username, e.code)
            return None
    body = urlencode({"course_id": req.course.id, "assignment_id": req.assignment})
    try:
        r = await client.fetch(HTTPRequest(f"{base}assignments/fetch", method="POST", body=body,
                                           headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                                           request_timeout=120))
    except HTTPClientError as e:
        log.warning("fetching %s into %s's server failed: HTTP %s", folder, req.username, e.code)
        return None
    result = json.loads(r.body or b"{}")
    if not result.get("success"):
        log.warning("fetching %s into %s's server failed: %s", folder, req.username,
                    str(result.get("value", ""))[-500:])
        return None
    return folder
