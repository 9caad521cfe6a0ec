"""Gradebook export: nbgrader's gradebook read in one snapshot with a few set-based queries,
shaped with pandas (wide, long, Canvas import) and written atomically with formula-safe cells."""

from .tables import Grades, canvas_table, load_grades, long_table, wide_table
from .writers import write_table

__all__ = ["Grades", "canvas_table", "load_grades", "long_table", "wide_table", "write_table"]
