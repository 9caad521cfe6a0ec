"""Gradebook export: nbgrader's gradebook read in one snapshot with a few set-based queries,
shaped with pandas (wide, long, Canvas import; `tables.py`) or, for the `coursehub export` command,
in plain Python (`rows.py`), and written atomically with formula-safe cells.

The pandas names below load on first use, so `coursehub export` never imports pandas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tables import Grades, canvas_table, load_grades, long_table, wide_table
    from .writers import write_table

__all__ = ["Grades", "canvas_table", "load_grades", "long_table", "wide_table", "write_table"]


def __getattr__(name: str) -> Any:
    if name == "write_table":
        from .writers import write_table

        return write_table
    if name in __all__:
        from . import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
