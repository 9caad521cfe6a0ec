"""One course-id rule wherever an id comes in: course.yaml, the exchange and store, the open page,
the dashboard's and the textbook service's URLs. A trailing '-' (which the dashboard once allowed)
is refused by all of them."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from pydantic import TypeAdapter, ValidationError
from tornado import web
from tornado.routing import PathMatches

from coursehub.grading.dashboard.handlers import dashboard_handlers
from coursehub.grading.ids import BadId, check_course_id
from coursehub.platform.courses import COURSE_ID_ROUTE, CourseId
from coursehub.platform.lti.open_page import parse_open_args
from coursehub.platform.textbook.service import COURSE_RE

BAD = ["demo-", "-demo", "Demo", "demo_1", "de/mo", "demo-101\n", "a" * 41, ""]
GOOD = ["demo-101", "a", "x1", "a" * 40]


def _entry_points(course_id: str) -> dict[str, bool]:
    """Whether each place that takes a course id from outside accepts `course_id`."""
    accepted = {}
    try:
        TypeAdapter(CourseId).validate_python(course_id)
        accepted["course.yaml"] = True
    except ValidationError:
        accepted["course.yaml"] = False
    try:
        check_course_id(course_id)
        accepted["exchange"] = True
    except BadId:
        accepted["exchange"] = False
    try:
        parse_open_args({"course": course_id}.get)
        accepted["open page"] = True
    except web.HTTPError:
        accepted["open page"] = False
    in_url = quote(course_id, safe="")  # how the id arrives in a request path
    for pattern, _ in dashboard_handlers():
        path = pattern.replace(COURSE_ID_ROUTE, in_url).replace("/?", "/")
        accepted[f"dashboard {path}"] = PathMatches(pattern).regex.match(path) is not None
    accepted["textbook"] = PathMatches("/services/textbooks/" + COURSE_RE).regex.match(
        f"/services/textbooks/{in_url}") is not None
    return accepted


@pytest.mark.parametrize("course_id", BAD)
def test_bad_course_ids_are_refused_everywhere(course_id):
    accepted = _entry_points(course_id)
    assert len(accepted) >= 9
    assert not any(accepted.values()), accepted


@pytest.mark.parametrize("course_id", GOOD)
def test_good_course_ids_are_accepted_everywhere(course_id):
    accepted = _entry_points(course_id)
    assert all(accepted.values()), accepted
