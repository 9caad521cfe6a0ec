"""One deadline everywhere: course.yaml's due dates, extensions and late policy, as the exchange
tells students before they submit and as nbgrader's gradebook (the formgrader) shows them.

course.yaml is the source; the gradebook's `duedate` and each submission's `extension` are
written from it, so nbgrader's own "late" agrees with the service's, the dashboard and the export.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from coursehub.platform.courses import Course

from .gradebook import create_gradebook

log = logging.getLogger("coursehub.grading.deadlines")


def deadline_info(course: Course, assignment_id: str, student: str, now: dt.datetime) -> dict | None:
    """What a student's exchange client needs to warn before a late submit (None: no deadline)."""
    due = course.due_for(assignment_id, student)
    if due is None:
        return None
    policy = course.late_policy
    return {"due_at": due.isoformat(), "now": now.isoformat(), "grace_minutes": policy.grace_minutes,
            "penalty_percent_per_day": policy.penalty_percent_per_day, "max_late_days": policy.max_late_days}


def _utc_naive(value: dt.datetime) -> dt.datetime:
    """nbgrader stores naive UTC datetimes."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def write_deadlines(db_url: str, course: Course) -> int:
    """Write course.yaml's due dates into the gradebook (creating the assignment rows, as nbgrader's
    `db assignment add` does) and its extensions onto existing submissions; returns rows changed."""
    from nbgrader.api import Gradebook, MissingEntry

    create_gradebook(db_url, course.id)  # nothing if it exists
    changed = 0
    with Gradebook(db_url, course.id) as gb:
        for a in course.assignments:
            if a.due is None:
                continue
            due = _utc_naive(a.due)
            try:
                current = gb.find_assignment(a.id).duedate
            except MissingEntry:
                current = None
            if current != due:
                gb.update_or_create_assignment(a.id, duedate=due)
                changed += 1
        for e in course.extensions:
            a = course.assignment(e.assignment)
            if a is None or a.due is None:
                continue
            try:
                sub = gb.find_submission(e.assignment, e.student)
            except MissingEntry:
                continue  # written when the submission is in the gradebook (next sync)
            extra = _utc_naive(e.due) - _utc_naive(a.due)
            if sub.extension != extra:
                sub.extension = extra
                gb.db.commit()
                changed += 1
    if changed:
        log.info("deadlines of %s written to its gradebook (%d changes)", course.id, changed)
    return changed


def sync_course_dir(root: Path, course: Course) -> int:
    """write_deadlines for a course directory's gradebook (CourseDirectory.db_url from the course's
    nbgrader_config.py); a failure is logged, never fatal: the service still starts."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config, PyFileConfigLoader

    try:
        config = Config()
        if (root / "nbgrader_config.py").is_file():
            config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
        coursedir = CourseDirectory(config=config)
        coursedir.root = str(root)
        return write_deadlines(coursedir.db_url, course)
    except Exception:  # noqa: BLE001 - a broken gradebook must not stop the exchange
        log.exception("could not write the deadlines of %s into its gradebook", course.id)
        return 0
