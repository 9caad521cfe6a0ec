"""The export's shapes: long (student x assignment), wide (one row per student) and Canvas import.

Deadlines: course.yaml's assignment `due` (and its per-student `extensions`) when the course
defines one, else the gradebook's `duedate` plus nbgrader's per-submission `extension`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from coursehub.platform.courses import Course

from .columns import CANVAS_FIXED, LONG_COLUMNS, STUDENT_COLUMNS, TOTAL_COLUMNS, assignment_columns
from .late import policy_penalty, seconds_late
from .snapshot import RawGradebook, gradebook_url, read_gradebook, snapshot


@dataclass
class Grades:
    """Everything an export or the dashboard needs, read from one snapshot."""

    assignments: pd.DataFrame  # assignment, duedate, max_score (ordered like nbgrader: duedate, name)
    students: pd.DataFrame  # STUDENT_COLUMNS, ordered by student_id
    long: pd.DataFrame  # LONG_COLUMNS, one row per student x assignment
    #: The course's LatePolicy, or a stand-in with no penalty when there is no course.
    policy: Any = None


def _utc_naive(value) -> pd.Timestamp | None:  # noqa: ANN001
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts


def load_grades(course_dir: Path | None = None, db_url: str | None = None, course: Course | None = None) -> Grades:
    """Read the gradebook in one snapshot and apply the course's deadlines and late policy."""
    with snapshot(gradebook_url(course_dir, db_url)) as conn:
        raw = read_gradebook(conn)
    return build_grades(raw, course)


class NoPolicy:
    """No course, no late policy: nothing beyond nbgrader's own stored penalties."""

    grace_minutes = 0
    penalty_percent_per_day = 0.0
    max_late_days = None


def build_grades(raw: RawGradebook, course: Course | None = None) -> Grades:
    policy = course.late_policy if course else NoPolicy()
    assignments = raw.assignments.sort_values(["duedate", "assignment"], na_position="last", kind="stable")
    assignments = assignments.reset_index(drop=True)
    students = raw.students.sort_values("student_id", kind="stable").reset_index(drop=True)
    for col in STUDENT_COLUMNS[1:]:
        students[col] = students[col].astype(object)

    # every student x every assignment (student-major), the submissions placed by position
    n_s, n_a = len(students), len(assignments)
    subs = raw.submissions
    s_at = pd.Index(students["student_id"]).get_indexer(subs["student_id"])
    a_at = pd.Index(assignments["assignment_id"]).get_indexer(subs["assignment_id"])
    keep = (s_at >= 0) & (a_at >= 0)
    pos = s_at[keep] * n_a + a_at[keep]
    size = n_s * n_a

    def scatter(values: np.ndarray, fill, dtype) -> np.ndarray:  # noqa: ANN001
        out = np.full(size, fill, dtype=dtype)
        out[pos] = values[keep]
        return out

    long = pd.DataFrame({
        "student_id": np.repeat(students["student_id"].to_numpy(dtype=object), n_a),
        "assignment": np.tile(assignments["assignment"].to_numpy(dtype=object), n_s),
        "duedate": np.tile(assignments["duedate"].to_numpy(), n_s),
        "max_score": np.tile(assignments["max_score"].to_numpy(dtype=float), n_s),
        "timestamp": scatter(subs["timestamp"].to_numpy(dtype="datetime64[us]"), np.datetime64("NaT"),
                             "datetime64[us]"),
        "extension": scatter(subs["extension"].to_numpy(dtype="timedelta64[us]"), np.timedelta64("NaT"),
                             "timedelta64[us]"),
        "raw_score": scatter(subs["raw_score"].to_numpy(dtype=float), 0.0, float),
        "stored_penalty": scatter(subs["stored_penalty"].to_numpy(dtype=float), 0.0, float),
        "needs_manual_grade": scatter(subs["needs_manual_grade"].to_numpy(dtype=bool), False, bool),
        "submitted": scatter(np.ones(len(subs), dtype=bool), False, bool),
    })
    long["due"] = _deadlines(long, course)
    late_s = seconds_late(long["timestamp"], long["due"])
    penalty = np.maximum(long["stored_penalty"].to_numpy(), policy_penalty(long["raw_score"], late_s, policy))
    long["late_submission_penalty"] = np.where(long["submitted"], penalty, 0.0)
    long["score"] = (long["raw_score"] - long["late_submission_penalty"]).clip(lower=0.0)
    long["minutes_late"] = (late_s / 60.0).round(2)
    for col in STUDENT_COLUMNS[1:]:
        long[col] = np.repeat(students[col].to_numpy(dtype=object), n_a)
    long = long[LONG_COLUMNS]
    return Grades(assignments[["assignment", "duedate", "max_score"]], students, long, policy)


def _deadlines(long: pd.DataFrame, course: Course | None) -> pd.Series:
    due = long["duedate"] + long["extension"].fillna(pd.Timedelta(0))
    if course is None:
        return due
    yaml_due = {a.id: _utc_naive(a.due) for a in course.assignments if a.due is not None}
    if yaml_due:
        mapped = long["assignment"].map(yaml_due).astype("datetime64[us]")
        due = mapped.where(mapped.notna(), due)
    for ext in course.extensions:
        mask = (long["assignment"] == ext.assignment) & (long["student_id"] == ext.student)
        due = due.mask(mask, _utc_naive(ext.due))
    return due.astype("datetime64[us]")


def long_table(grades: Grades) -> pd.DataFrame:
    """One row per student and assignment (nbgrader export's columns first)."""
    return grades.long


def wide_table(grades: Grades) -> pd.DataFrame:
    """One row per student, one column per assignment (final scores, headed as in
    `assignment_columns`), then the totals."""
    long = grades.long
    names = list(grades.assignments["assignment"])
    scores = long.pivot(index="student_id", columns="assignment", values="score").reindex(
        index=grades.students["student_id"], columns=names).fillna(0.0)
    headers = assignment_columns(names)
    scores.columns = headers
    sums = long.groupby("student_id").agg(
        raw_total=("raw_score", "sum"), late_penalty=("late_submission_penalty", "sum"), total=("score", "sum"))
    sums = sums.reindex(grades.students["student_id"]).fillna(0.0)
    sums["max_total"] = float(grades.assignments["max_score"].sum())
    info = grades.students.set_index("student_id")[STUDENT_COLUMNS[1:]]
    out = pd.concat([info, scores, sums[TOTAL_COLUMNS]], axis=1)
    out.index.name = "student_id"
    out.columns = [*STUDENT_COLUMNS[1:], *headers, *TOTAL_COLUMNS]
    return out.reset_index()


def canvas_table(grades: Grades, section: str = "") -> pd.DataFrame:
    """Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one column
    per assignment, with the 'Points Possible' row first.

    Mapping: Student = "Last, First"; ID = the LMS user id nbgrader holds (lms_user_id) if any;
    SIS User ID = the nbgrader student id; SIS Login ID = the email.
    """
    wide = wide_table(grades)
    names = assignment_columns(list(grades.assignments["assignment"]))
    last = wide["last_name"].fillna("").astype(str)
    first = wide["first_name"].fillna("").astype(str)
    student = (last + ", " + first).where((last != "") & (first != ""), (last + first))
    student = student.where(student != "", wide["student_id"].astype(str))
    body = pd.DataFrame({
        "Student": student, "ID": wide["lms_user_id"].fillna(""), "SIS User ID": wide["student_id"],
        "SIS Login ID": wide["email"].fillna(""), "Section": section,
    })  # fmt: skip
    scores = wide[names].astype(object)
    points = pd.DataFrame(
        [["    Points Possible", "", "", "", "", *grades.assignments["max_score"].tolist()]],
        columns=[*CANVAS_FIXED, *names])  # fmt: skip
    table = pd.concat([body.reset_index(drop=True), scores.reset_index(drop=True)], axis=1)
    table.columns = [*CANVAS_FIXED, *names]
    return pd.concat([points, table], ignore_index=True)
