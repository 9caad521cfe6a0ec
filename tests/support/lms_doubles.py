"""Test doubles for the LMS side: fixed launch services and hub groups through the REST API."""

from __future__ import annotations

from collections.abc import Iterable

from coursehub.grading.lms.hubgroups import HubGroups
from coursehub.grading.lms.records import LaunchServices


class StaticServices:
    """A fixed mapping (tests, scripts): {(course, student): LaunchServices}."""

    def __init__(self, records: Iterable[LaunchServices]):
        self.records = {(r.course_id, r.username): r for r in records}

    def for_student(self, course_id: str, student: str) -> LaunchServices | None:
        return self.records.get((course_id, student))

    def for_course(self, course_id: str) -> list[LaunchServices]:
        seen: dict[str, LaunchServices] = {}
        for r in self.records.values():
            if r.course_id == course_id and r.nrps_url:
                seen.setdefault(r.context_id or r.nrps_url, r)
        return list(seen.values())


class HubGroupsSink(HubGroups):
    """The service's hub groups client (kept under its old name for tests)."""
