"""The student's view of an instant result: GET .../submissions/<id>/instant.

Only the submission's own student (and the course's staff) may read it; anyone else gets the same
404 as for a submission that does not exist, so ids cannot be probed. The answer holds the visible
tests' results only: hidden tests never ran (visible.py), so there is nothing of them to hide.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..ids import check_assignment_id
from ..models import Submission
from ..service.errors import ServiceError
from ..service.handlers import BaseHandler
from .store import InstantStore

NOT_FOUND = "There is no such submission of yours."
#: Fields of a stored record a student may read.
PUBLIC = ("submission_id", "assignment_id", "timestamp", "status", "message", "tests", "passed", "total")


def instant_result(core: Any, store: InstantStore, caller: Any, course_id: str, assignment_id: str,
                   submission_id: int) -> dict:
    """The instant result of one submission, if `caller` may see it (blocking: run in the pool)."""
    course = core.require_member(caller, course_id)
    try:
        check_assignment_id(assignment_id)
    except ValueError:
        raise ServiceError(404, NOT_FOUND) from None
    with core.sessions() as s:
        sub = s.scalars(select(Submission).where(Submission.id == submission_id)).first()
        owner = sub.student_id if sub is not None else None
        if sub is None or (sub.course_id, sub.assignment_id) != (course_id, assignment_id):
            raise ServiceError(404, NOT_FOUND)
    if owner != caller.name and not caller.is_staff(course_id):
        raise ServiceError(404, NOT_FOUND)
    record = store.read(course_id, submission_id)
    if record is None:
        a = course.assignment(assignment_id)
        on = bool(a is not None and getattr(a, "instant_feedback", False))
        return {"submission_id": submission_id, "assignment_id": assignment_id, "status": "off" if not on else "none",
                "message": "Instant feedback is off for this assignment." if not on
                else "This submission has no instant feedback (it was made before it was turned on)."}
    return {k: record[k] for k in PUBLIC if k in record}


class InstantFeedbackHandler(BaseHandler):
    """GET: the visible tests' results of one submission (status "pending" until they are in)."""

    def initialize(self, store: InstantStore) -> None:
        self.store = store

    async def get(self, course_id: str, assignment_id: str, submission_id: str) -> None:
        self.write_json(await self.run(instant_result, self.core, self.store, self.caller, course_id,
                                       assignment_id, int(submission_id)))


ROUTE = r"api/courses/([^/]+)/assignments/([^/]+)/submissions/([0-9]{1,18})/instant"
