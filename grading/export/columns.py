"""The export's column names, shared by the pandas tables and the plain-Python rows (which must not
import pandas)."""

#: nbgrader export's columns, in its order, then ours.
LONG_COLUMNS = [
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score",
    "due", "minutes_late", "submitted", "needs_manual_grade",
]  # fmt: skip
STUDENT_COLUMNS = ["student_id", "last_name", "first_name", "email", "lms_user_id"]
TOTAL_COLUMNS = ["raw_total", "late_penalty", "total", "max_total"]
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: Columns of ours that an assignment column must never be confused with (compared casefolded).
RESERVED = frozenset(c.casefold() for c in [*STUDENT_COLUMNS, *TOTAL_COLUMNS, *CANVAS_FIXED])


def assignment_columns(names: list[str]) -> list[str]:
    """The column header of each assignment in the wide and Canvas tables: its name, unless that
    is one of our columns (an assignment may be called `total`, `email`, `student_id` ...) or an
    earlier header, then `assignment: <name>` (numbered if even that is taken). Stable and unique."""
    taken = set(RESERVED)
    out = []
    for name in names:
        text = str(name)
        header, n = text, 1
        while header.casefold() in taken:
            header = f"assignment: {text}" if n == 1 else f"assignment {n}: {text}"
            n += 1
        taken.add(header.casefold())
        out.append(header)
    return out
