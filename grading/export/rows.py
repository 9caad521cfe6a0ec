"""The export's tables in plain Python, for `coursehub export`.

Importing pandas and numpy costs more than a whole export of 3,000 students: the command builds
the same long, wide and Canvas tables from the same five queries with lists and dicts. Every number
is computed with the operations, in the order, the pandas path (`tables.py`, `late.py`) uses, so the
CSV files are byte for byte the same; `tests/grading/export/test_export_plain.py` holds them to it.
"""

from __future__ import annotations

import datetime as dt
import marshal
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .columns import CANVAS_FIXED, LONG_COLUMNS, STUDENT_COLUMNS, TOTAL_COLUMNS, assignment_columns
from .source import (
    ASSIGNMENTS_SQL,
    NOTEBOOK_SCORES_SQL,
    STUDENTS_SQL,
    SUBMISSIONS_SQL,
    SUBMITTED_NOTEBOOKS_SQL,
    gradebook_url,
    snapshot,
    sqlite_path,
)

if TYPE_CHECKING:
    from coursehub.platform.courses import Course

_GRADE_SUMS = Path(__file__).with_name("grade_sums.py")
DAY = 86_400.0
EPOCH = dt.datetime(1970, 1, 1)
_MAX = sys.float_info.max

#: A table: its header and its rows (cells are str, float, bool, datetime or None).
Table = tuple[list[str], list[list[Any]]]


@dataclass
class PlainGrades:
    """What the tables are built from: assignments and students in export order, and one
    record per student x assignment (student-major)."""

    assignments: list[tuple[str, dt.datetime | None, float]]  # name, duedate, max_score
    students: list[tuple]  # STUDENT_COLUMNS
    cells: list[tuple]  # long row values, LONG_COLUMNS order


def _fetch(conn: Any, sql: str) -> list[tuple]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def _datetime(value: Any) -> dt.datetime | None:
    """nbgrader stores naive UTC; SQLite hands back strings, PostgreSQL datetimes."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _interval(value: Any) -> dt.timedelta | None:
    """SQLAlchemy's Interval: native on PostgreSQL, `epoch + delta` on SQLite."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    return _datetime(value) - EPOCH


def _nan_to_num(value: Any) -> float:
    if value is None:
        return 0.0
    value = float(value)
    if value != value:
        return 0.0
    return _MAX if value == math.inf else -_MAX if value == -math.inf else value


def _maximum(a: float, b: float) -> float:
    return a if a >= b else b


def read_plain(course_dir: Path | None = None, db_url: str | None = None, course: Course | None = None) -> PlainGrades:
    """The gradebook in one snapshot (the pandas path's five queries), shaped into the long table's rows.

    (One statement joining the three tables inside SQLite measured twice as slow: its joins probe
    uuid indexes row by row, where dicts here hash each key once.)"""
    url = gradebook_url(course_dir, db_url)
    with snapshot(url) as conn:
        assignments = _fetch(conn, ASSIGNMENTS_SQL)  # the snapshot (a SHARED lock on SQLite) starts here
        scores = _scores_beside(conn, url)
        try:
            students = _fetch(conn, STUDENTS_SQL)
            submissions = _fetch(conn, SUBMISSIONS_SQL)
            notebooks = _fetch(conn, SUBMITTED_NOTEBOOKS_SQL)
            subs, by_id = _submissions(submissions)  # while the grades are still being summed
            get_rec = by_id.get
            placed = [(get_rec(sid), nid, penalty) for nid, sid, penalty in notebooks]
            plan = plan_cells(assignments, students, subs, course)  # still while the grades are summed
        finally:
            there = scores() if scores is not None else None  # collected (and reaped) whatever happens
        nb_scores = there if there is not None else _fetch(conn, NOTEBOOK_SCORES_SQL)
    _add_scores(placed, nb_scores)
    return plan.finish()


def _scores_beside(conn: Any, url: str) -> Callable[[], list[tuple] | None] | None:
    """The grade table's GROUP BY (half the export's time) started in a process of its own
    (`grade_sums.py`) while this one reads the rest; call the result to collect its rows (None: run
    the query here).

    Only in rollback-journal mode, where it is the same snapshot: `conn` already holds a SHARED lock,
    so no writer can commit until both are done. The other process never waits for a lock: a writer
    queued in between (PENDING) makes it give up at once, and the query runs on `conn`. In WAL mode
    it could see a later commit, so it is not used there."""
    path = sqlite_path(url)
    if (path is None or path == ":memory:" or not sys.executable
            or _fetch(conn, "PRAGMA journal_mode")[0][0].lower() == "wal"):
        return None
    argv = [sys.executable, "-I", "-S", str(_GRADE_SUMS), Path(path).resolve().as_uri(), NOTEBOOK_SCORES_SQL]
    read_fd, write_fd = os.pipe()
    try:
        pid = os.posix_spawn(sys.executable, argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, write_fd, 1), (os.POSIX_SPAWN_CLOSE, read_fd)])
    except OSError:
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)

    def result() -> list[tuple] | None:
        with open(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not data:
            return None
        return marshal.loads(data)

    return result


def _submissions(submissions: list[tuple]) -> tuple[dict, dict]:
    """assignment id -> student -> [timestamp, extension, raw score, stored penalty, needs manual],
    and the same records by submission id."""
    by_id = {}
    out: dict[Any, dict] = {}
    for sid, aid, student, timestamp, extension in submissions:
        per = out.get(aid)
        if per is None:
            per = out[aid] = {}
        by_id[sid] = per[student] = [timestamp, extension, 0.0, 0.0, False]
    return out, by_id


def _add_scores(placed: list[tuple], nb_scores: list[tuple]) -> None:
    """Each notebook's score and stored penalty into its submission's record, in the table's order
    (the order the pandas path adds them in); a notebook without grades adds 0.0."""
    get_score = {row[0]: row for row in nb_scores}.get
    for rec, nid, penalty in placed:
        if rec is None:
            continue
        score = get_score(nid)
        if score is not None:
            rec[2] += float(score[1])
            if score[2]:
                rec[4] = True
        if penalty is not None:
            rec[3] += _nan_to_num(penalty)


def _deadlines(course: Course | None) -> tuple[dict, dict]:
    """course.yaml's deadlines by assignment name and its extensions by (student, assignment)."""
    if course is None:
        return {}, {}
    yaml_due = {a.id: _datetime(a.due) for a in course.assignments if a.due is not None}
    ext = {(e.student, e.assignment): _datetime(e.due) for e in course.extensions}
    return yaml_due, ext


def _plain_time(value: Any) -> bool:
    """A timestamp as SQLAlchemy stores it in SQLite: it sorts as text and prints as the export does."""
    return isinstance(value, str) and len(value) == 26 and value[10] == " " and value[19] == "."


@dataclass
class CellPlan:
    """Every cell worked out as far as it can be without the scores (deadlines and the late policy,
    see `late.py`): `finish` adds them, once `_add_scores` has filled the submission records.
    `read_plain` plans while the grades are summed."""

    assignments: list[tuple[str, dt.datetime | None, float]]
    students: list[tuple]
    #: per cell: (0, the row) without a submission; (1, record, name, due text, timestamp, student,
    #: last, first, email, max score) on time; (2, record, name, due date, timestamp, student, last,
    #: first, email, max score, due, minutes late, late, share of the score lost, past the cut-off)
    cells: list[tuple]

    def finish(self) -> PlainGrades:
        rows = []
        append = rows.append
        for cell in self.cells:
            kind = cell[0]
            if kind == 0:
                append(cell[1])
                continue
            rec = cell[1]  # [timestamp, extension, raw score, stored penalty, needs manual grading]
            raw, stored = rec[2], rec[3]
            if kind == 1:
                _, _, name, due_text, timestamp, student, last, first, email, max_score = cell
                penalty = stored if stored >= 0.0 else 0.0  # on time: only nbgrader's stored penalty
                score = raw - penalty
                append((name, due_text, timestamp, student, last, first, email, raw, penalty,
                        score if score >= 0.0 else 0.0, max_score, due_text, 0.0, True, rec[4]))
                continue
            _, _, name, duedate, timestamp, student, last, first, email, max_score, due, minutes, late, share, cut = cell
            penalty = raw * share if late else 0.0
            if cut:
                penalty = raw
            penalty = _maximum(stored, _maximum(penalty, 0.0))
            score = raw - penalty
            if not score >= 0.0:
                score = 0.0
            append((name, duedate, timestamp, student, last, first, email, raw, penalty, score, max_score,
                    due, minutes, True, rec[4]))
        return PlainGrades(self.assignments, self.students, rows)


def plan_cells(assignments: list[tuple], students: list[tuple], subs: dict, course: Course | None = None) -> CellPlan:
    """Deadlines and the late policy for every student x assignment, up to the scores (`CellPlan`)."""
    policy = course.late_policy if course else None
    grace = (policy.grace_minutes if policy else 0) * 60.0
    percent = policy.penalty_percent_per_day if policy else 0.0
    cutoff = policy.max_late_days if policy else None
    yaml_due, ext_due = _deadlines(course)
    ordered = []
    for aid, name, due, mx in assignments:
        parsed = _datetime(due)
        text = due if _plain_time(due) and name not in yaml_due else None
        ordered.append((aid, name, parsed, float(mx), text))
    ordered.sort(key=lambda a: (a[2] is None, a[2] or EPOCH, a[1]))  # duedate, then name; none last
    studs = sorted(students, key=lambda s: s[0])
    ids = [s[0] for s in studs]
    # per assignment, its submissions lined up with the students (one hashed lookup per cell)
    columns = []
    for aid, *_rest in ordered:
        get = subs.get(aid, {}).get
        columns.append([get(i) for i in ids])
    zero = dt.timedelta(0)
    cells = []
    append = cells.append
    for i, (student, last, first, email, _lms) in enumerate(studs):
        for (_aid, name, duedate, max_score, due_text), column in zip(ordered, columns, strict=True):
            rec = column[i]
            if rec is None:
                due = duedate
                if name in yaml_due:
                    due = yaml_due[name]
                if ext_due and (student, name) in ext_due:
                    due = ext_due[(student, name)]
                append((0, (name, duedate, None, student, last, first, email, 0.0, 0.0, 0.0, max_score, due, 0.0,
                            False, False)))
                continue
            timestamp, extension = rec[0], rec[1]
            if (due_text is not None and extension is None and type(timestamp) is str and len(timestamp) == 26
                    and timestamp <= due_text and timestamp[19] == "." and timestamp[10] == " "
                    and not (ext_due and (student, name) in ext_due)):
                append((1, rec, name, due_text, timestamp, student, last, first, email, max_score))
                continue
            timestamp, extension = _datetime(timestamp), _interval(extension)
            due = None if duedate is None else duedate + (extension if extension is not None else zero)
            if name in yaml_due:
                due = yaml_due[name]
            if (student, name) in ext_due:
                due = ext_due[(student, name)]
            late_s = 0.0
            if timestamp is not None and due is not None:
                delta = timestamp - due
                late_s = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) / 1_000_000
                if not late_s >= 0:
                    late_s = 0.0
            late = late_s > grace
            days = float(math.ceil(late_s / DAY))
            share = min(days * percent / 100.0, 1.0)
            cut = cutoff is not None and late and days > cutoff
            minutes = round(late_s / 60.0 * 100.0) / 100.0
            append((2, rec, name, duedate, timestamp, student, last, first, email, max_score, due, minutes, late,
                    share, cut))
    return CellPlan([(a[1], a[2], a[3]) for a in ordered], studs, cells)


def segment_sum(values: list[float]) -> float:
    """One student's total as pandas' groupby sum computes it for sorted groups (numpy's
    `add.reduceat`: the first value plus the pairwise sum of the rest), to the last bit."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return values[0] + pairwise_sum(values[1:])


def pairwise_sum(values: list[float]) -> float:
    """numpy's sum of a float64 array (8-way unrolled pairwise summation), for the max total."""
    def block(a: list[float]) -> float:
        n = len(a)
        if n < 8:
            res = 0.0
            for v in a:
                res += v
            return res
        if n <= 128:
            r = list(a[:8])
            i = 8
            while i < n - n % 8:
                for j in range(8):
                    r[j] += a[i + j]
                i += 8
            res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            for v in a[i:]:
                res += v
            return res
        half = n // 2
        half -= half % 8
        return block(a[:half]) + block(a[half:])
    return block(list(values))




def long_rows(grades: PlainGrades) -> Table:
    return LONG_COLUMNS, [list(c) for c in grades.cells]


def wide_rows(grades: PlainGrades) -> Table:
    """One row per student: details, final score per assignment, totals."""
    n_a = len(grades.assignments)
    max_total = float(pairwise_sum([a[2] for a in grades.assignments]))
    header = [*STUDENT_COLUMNS, *assignment_columns([a[0] for a in grades.assignments]), *TOTAL_COLUMNS]
    rows = []
    cells = grades.cells
    for i, student in enumerate(grades.students):
        mine = cells[i * n_a:(i + 1) * n_a]
        scores = [c[9] for c in mine]
        rows.append([*student, *scores, segment_sum([c[7] for c in mine]), segment_sum([c[8] for c in mine]),
                     segment_sum(scores), max_total])
    return header, rows


def canvas_rows(grades: PlainGrades, section: str = "") -> Table:
    """Canvas gradebook import, as `tables.canvas_table` (the 'Points Possible' row first)."""
    header, wide = wide_rows(grades)
    n_a = len(grades.assignments)
    names = header[5:5 + n_a]
    rows = [["    Points Possible", "", "", "", "", *[a[2] for a in grades.assignments]]]
    for student_id, last, first, email, lms, *rest in wide:
        last, first = last or "", first or ""
        name = f"{last}, {first}" if last and first else last + first
        rows.append([name or student_id, lms if lms is not None else "", student_id,
                     email if email is not None else "", section, *rest[:n_a]])
    return [*CANVAS_FIXED, *names], rows
