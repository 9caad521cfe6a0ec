"""The course pages, mounted with the dashboard under the grading service prefix:

    GET  course/<course>/        a student's own assignments (staff see a note and their links)
    GET  course/<course>/staff   release/collect state, autograde progress, LMS sync (instructors, TAs)

Browser pages: the hub's OAuth cookie (or a token), the service's security headers, no forms.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .handlers import COURSE, DashboardBase


class CoursePageBase(DashboardBase):
    def links(self, course_id: str) -> dict[str, str]:
        prefix = self.request.path.split("/course/", 1)[0]
        hub_prefix = self.hub_auth.hub_prefix or "/hub/"
        base_url = hub_prefix[: -len("hub/")] if hub_prefix.endswith("/hub/") else "/"
        user = f"{base_url}user/{quote(self.caller.name, safe='')}/"
        return {"student_url": f"{prefix}/course/{quote(course_id)}/",
                "staff_url": f"{prefix}/course/{quote(course_id)}/staff",
                "dashboard_url": f"{prefix}/dashboard/{quote(course_id)}/",
                "formgrader_url": f"{user}formgrader", "lab_url": f"{user}lab", "hub_home": f"{hub_prefix}home"}

    def page(self, template: str, **context: Any) -> None:
        from .templating import render

        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render(template, **context))


class StudentCoursePage(CoursePageBase):
    async def get(self, course_id: str) -> None:
        course = self.core.require_member(self.caller, course_id)
        links = self.links(course_id)
        if self.caller.is_staff(course_id):
            return self.page("course.html", course=course, staff=True, view=None, **links)
        from .coursepage import student_view

        view = await self.run(student_view, self.cfg, self.core, self.caller, course)
        self.page("course.html", course=course, staff=False, view=view, **links)


class StaffCoursePage(CoursePageBase):
    async def get(self, course_id: str) -> None:
        course = self.core.require_staff(self.caller, course_id, "see the course's staff page")
        from .staffpage import staff_view

        view = await self.run(staff_view, self.cfg, self.core, self.caller, course)
        self.page("staff.html", course=course, view=view, dead_total=sum(r.jobs["dead"] for r in view.rows),
                  **self.links(course_id))


def page_handlers() -> list[tuple]:
    """Routes relative to the grading service prefix."""
    return [
        (rf"course/{COURSE}/?", StudentCoursePage),
        (rf"course/{COURSE}/staff/?", StaffCoursePage),
    ]
