"""Identifiers the exchange accepts: course, assignment, student and file names.

They end up in URLs, database keys and file paths (the instructor's `submitted/<student>/<id>/`),
so each is restricted to a safe alphabet and checked on both sides of the wire. Nothing path-like
(`/`, `\\`, `..`, a leading dot) ever passes.
"""

from __future__ import annotations

import re

from coursehub.platform.courses import COURSE_ID_PATTERN, ITEM_ID_PATTERN

COURSE_ID = re.compile(COURSE_ID_PATTERN)
ASSIGNMENT_ID = re.compile(ITEM_ID_PATTERN)
#: Hub user names (dev login, LTI and SSO names are all inside this); '+' is nbgrader's separator.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
#: One component of a file path inside an assignment: no leading dot, no separators.
FILE_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9 _.,()=+@-]{0,254}$")
MAX_DEPTH = 8


class BadId(ValueError):
    """An id or path that is not allowed; the message says which and why."""


def _check(pattern: re.Pattern, value: object, what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise BadId(f"invalid {what} {value!r}: {rule}")
    return value


def check_course_id(value: object) -> str:
    return _check(COURSE_ID, value, "course id", "use lower-case letters, digits and '-'")


def check_assignment_id(value: object) -> str:
    return _check(ASSIGNMENT_ID, value, "assignment id", "use letters, digits, '_' and '-' (at most 63)")


def check_student_id(value: object) -> str:
    return _check(STUDENT_ID, value, "student id", "use letters, digits, '.', '_', '@' and '-'")


def check_notebook_id(value: object) -> str:
    return _check(FILE_COMPONENT, value, "notebook id", "a plain file name without folders")


def check_relpath(value: str) -> str:
    """A relative file path inside an assignment, e.g. 'data/table.csv'."""
    if not isinstance(value, str) or not value or value.startswith("/") or "\\" in value or "\x00" in value:
        raise BadId(f"invalid file path {value!r}: must be relative, with '/' separators")
    parts = value.split("/")
    if len(parts) > MAX_DEPTH:
        raise BadId(f"invalid file path {value!r}: more than {MAX_DEPTH} folders deep")
    for part in parts:
        if part in ("", ".", "..") or not FILE_COMPONENT.fullmatch(part):
            raise BadId(f"invalid file path {value!r}: {part!r} is not an allowed file or folder name")
    return value
