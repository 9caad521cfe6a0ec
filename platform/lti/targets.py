"""What a launch opens: an assignment, a textbook page, or the course's JupyterLab.

The signed launch names it in a custom parameter (`assignment=ps1`, `textbook=01-welcome`) or in
its target link URI's query (`.../hub/coursehub/open?assignment=ps1`). Only ids the course
defines are honoured; anything else opens the course home. The result is always a path on this
hub (`/hub/coursehub/open?...`), so no launch can redirect elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlparse

from ..courses import Course

_PAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


@dataclass(frozen=True)
class Target:
    kind: str  # "assignment" | "textbook" | "course"
    item: str = ""


def textbook_pages(course: Course) -> list[str]:
    """Textbook page names (notebook file stems, sorted) of `course`."""
    folder = course.textbook_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def resolve_target(course: Course, custom: dict, target_link_uri: str) -> Target:
    query = {k: v[0] for k, v in parse_qs(urlparse(target_link_uri or "").query).items() if v}
    for source in (custom, query):
        assignment = source.get("assignment")
        if isinstance(assignment, str) and course.assignment(assignment) is not None:
            return Target("assignment", assignment)
        page = source.get("textbook") or source.get("page")
        if isinstance(page, str):
            page = page.removesuffix(".ipynb")
            if _PAGE.match(page) and page in textbook_pages(course):
                return Target("textbook", page)
    return Target("course")


def open_path(hub_base_url: str, course_id: str, target: Target) -> str:
    """The hub URL that starts the server and opens `target` (see handlers.OpenHandler)."""
    args = {"course": course_id}
    if target.kind in ("assignment", "textbook"):
        args[target.kind] = target.item
    return f"{hub_base_url.rstrip('/')}/coursehub/open?{urlencode(args)}"


#: Where staff land from a launch: the grading service's staff page of the course (the route of
#: grading/dashboard/pages.py below grading/service/hub.py's PREFIX; tests/platform/lti checks both).
STAFF_PAGE = "services/grading/course/{course}/staff"


def staff_page_path(base_url: str, course_id: str) -> str:
    """The staff landing page of `course_id` below the hub's public base URL (e.g. "/")."""
    prefix = f"/{base_url.strip('/')}/" if base_url.strip("/") else "/"
    return prefix + STAFF_PAGE.format(course=quote(course_id, safe=""))
