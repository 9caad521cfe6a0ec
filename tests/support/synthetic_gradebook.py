"""A synthetic nbgrader gradebook built with bulk inserts (benchmarks and tests only).

Going through nbgrader's Gradebook API costs several ORM round trips per row; a 3,000 x 40
gradebook would take many minutes. This writes the same tables in a few executemany calls.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import create_engine, insert, select

from coursehub.grading.gradebook import create_gradebook


@dataclass(frozen=True)
class StudentRow:
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None


def _uid() -> str:
    return uuid.uuid4().hex


def build_gradebook(
    db_url: str,
    n_students: int = 50,
    n_assignments: int = 4,
    *,
    cells: int = 3,
    manual_cells: int = 1,
    submit_rate: float = 0.9,
    late_rate: float = 0.1,
    students: Sequence[StudentRow] | None = None,
    assignment_names: Sequence[str] | None = None,
    first_due: dt.datetime = dt.datetime(2026, 10, 1, 23, 59),
    seed: int = 1,
    course_id: str = "",
) -> None:
    """Create (or extend) the gradebook at `db_url` with random but reproducible grades.

    Each assignment has one notebook with `cells` autograded code cells (2 points each) and
    `manual_cells` manually graded markdown cells (3 points each, some still ungraded).
    """
    from nbgrader.api import Base as NbBase

    create_gradebook(db_url, course_id)
    t = NbBase.metadata.tables
    rng = np.random.default_rng(seed)
    if students is None:
        students = [StudentRow(f"s{i:05d}", f"First{i}", f"Last{i}", f"s{i:05d}@uni.example", f"lms-{i}")
                    for i in range(n_students)]
    names = list(assignment_names or [f"ps{j + 1:02d}" for j in range(n_assignments)])

    rows: dict[str, list[dict]] = {k: [] for k in (
        "student", "assignment", "notebook", "base_cell", "grade_cells", "submitted_assignment",
        "submitted_notebook", "grade")}  # fmt: skip
    rows["student"] = [s.__dict__.copy() for s in students]
    cell_specs = []  # per assignment: (notebook_id, [(cell_id, max, is_manual)])
    engine = create_engine(db_url)
    try:  # assignments the platform already wrote (course.yaml's due dates) are reused, not duplicated
        with engine.connect() as conn:
            existing = {r.name: (r.id, r.duedate) for r in conn.execute(
                select(t["assignment"].c.id, t["assignment"].c.name, t["assignment"].c.duedate))}
    finally:
        engine.dispose()
    for j, name in enumerate(names):
        aid, nid = _uid(), _uid()
        due = first_due + dt.timedelta(days=7 * j)
        if name in existing:
            aid, due = existing[name][0], existing[name][1] or due
        else:
            rows["assignment"].append({"id": aid, "name": name, "duedate": due, "course_id": course_id})
        rows["notebook"].append({"id": nid, "name": "problems", "assignment_id": aid})
        specs = []
        for c in range(cells + manual_cells):
            cid, manual = _uid(), c >= cells
            rows["base_cell"].append({"id": cid, "name": f"cell{c}", "notebook_id": nid, "type": "GradeCell"})
            rows["grade_cells"].append({"id": cid, "max_score": 3.0 if manual else 2.0,
                                        "cell_type": "markdown" if manual else "code"})
            specs.append((cid, 3.0 if manual else 2.0, manual))
        cell_specs.append((aid, nid, specs, due))

    n_cells = cells + manual_cells
    for aid, nid, specs, due in cell_specs:
        submits = rng.random(len(students)) < submit_rate
        late = rng.random(len(students)) < late_rate
        offsets = np.where(late, rng.integers(60, 6 * 86400, len(students)), -rng.integers(60, 3 * 86400, len(students)))
        auto = rng.integers(0, 3, (len(students), n_cells)).astype(float)
        graded = rng.random((len(students), n_cells)) < 0.8
        for i, s in enumerate(students):
            if not submits[i]:
                continue
            said, snid = _uid(), _uid()
            rows["submitted_assignment"].append({
                "id": said, "assignment_id": aid, "student_id": s.id,
                "timestamp": due + dt.timedelta(seconds=int(offsets[i])), "extension": None})
            rows["submitted_notebook"].append({"id": snid, "assignment_id": said, "notebook_id": nid,
                                               "flagged": False, "late_submission_penalty": None})
            for k, (cid, _mx, manual) in enumerate(specs):
                if manual:
                    rows["grade"].append({"id": _uid(), "notebook_id": snid, "cell_id": cid, "auto_score": None,
                                          "manual_score": float(auto[i, k]) if graded[i, k] else None,
                                          "extra_credit": None, "needs_manual_grade": not graded[i, k]})
                else:
                    rows["grade"].append({"id": _uid(), "notebook_id": snid, "cell_id": cid,
                                          "auto_score": float(auto[i, k]) if auto[i, k] < 2 else 2.0,
                                          "manual_score": None, "extra_credit": None, "needs_manual_grade": False})
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            if conn.execute(select(t["course"].c.id).where(t["course"].c.id == course_id)).first() is None:
                conn.execute(insert(t["course"]), [{"id": course_id}])  # nbgrader adds none for course_id ""
            for table in ("student", "assignment", "notebook", "base_cell", "grade_cells",
                          "submitted_assignment", "submitted_notebook", "grade"):
                if rows[table]:
                    conn.execute(insert(t[table]), rows[table])
    finally:
        engine.dispose()
