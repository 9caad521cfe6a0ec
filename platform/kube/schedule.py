"""Lecture occurrences from the courses' weekly `schedule`: when, how long and how many students.

Times are computed in each lecture's own time zone, so a 10:00 Berlin lecture stays at 10:00
across daylight-saving changes; callers work with aware datetimes throughout.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from coursehub.platform.courses import Course, Lecture

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def ceil(x: float) -> int:
    """Ceiling that ignores float noise (300 * 0.8 is 240.00000000000003, not 241 students)."""
    return math.ceil(round(x, 9))


def lecture_users(course: Course, lecture: Lecture) -> int:
    """Students expected at one lecture: enrollment times attendance, rounded up."""
    return ceil(course.enrollment * lecture.attendance)


@dataclass(frozen=True)
class Session:
    """One occurrence of a weekly lecture."""

    course_id: str
    start: dt.datetime
    end: dt.datetime
    users: int


def sessions_between(courses: Iterable[Course], start: dt.datetime, end: dt.datetime) -> list[Session]:
    """Every lecture occurrence overlapping [start, end), sorted by start time."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be time-zone aware")
    found: list[Session] = []
    for course in courses:
        for lecture in course.schedule:
            tz = ZoneInfo(lecture.timezone)
            hour, minute = (int(x) for x in lecture.start.split(":"))
            day = start.astimezone(tz).date() - dt.timedelta(days=1)
            last = end.astimezone(tz).date() + dt.timedelta(days=1)
            while day <= last:
                if _WEEKDAYS[day.weekday()] in lecture.days:
                    s = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    e = s + dt.timedelta(minutes=lecture.minutes)
                    if e > start and s < end:
                        found.append(Session(course.id, s, e, lecture_users(course, lecture)))
                day += dt.timedelta(days=1)
    return sorted(found, key=lambda s: (s.start, s.course_id))


def week_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """Monday 00:00 (in `tz`) of the week containing `day`."""
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=tz)
