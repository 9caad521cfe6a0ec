"""Visible tests only: an assignment's source index without hidden tests, and what passed.

The hidden regions are removed with nbgrader's own `ClearHiddenTests` (the step that strips them
from the release), so the tests run here are exactly those the student already sees in the
released notebook. Results are read with nbgrader's `determine_grade`, as SaveAutoGrades reads them.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import nbformat
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from coursehub.grading.autograde.sources import SourceIndex

#: The error line shown for a failing test is cut to this many characters.
MAX_ERROR = 300


@dataclass
class CellResult:
    """One autograder test cell, as the student may see it."""

    notebook: str
    cell_id: str
    passed: bool
    points: float
    #: the last line of the error (e.g. "AssertionError: expected 3"), "" when the test passed
    error: str = ""


def _clear(source: str, config: Config | None) -> tuple[str, bool]:
    cell = nbformat.v4.new_code_cell(source)
    removed = ClearHiddenTests(config=config or Config())._remove_hidden_test_region(cell)
    return cell.source, removed


def has_code(source: str) -> bool:
    """Whether a test cell still tests something (not only blank lines, comments or a docstring)."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return bool(source.strip())
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


def visible_index(index: SourceIndex, config: Config | None = None) -> SourceIndex:
    """A copy of `index` whose cells carry no hidden test region (what OverwriteCells restores
    into the submission before it runs)."""
    out = SourceIndex(assignment=index.assignment, points=copy.deepcopy(index.points),
                      kernelspecs=dict(index.kernelspecs), tasks=copy.deepcopy(index.tasks))
    for nb, cells in index.cells.items():
        out.cells[nb] = {}
        for name, cell in cells.items():
            source, removed = _clear(cell["source"] or "", config)
            entry = {**cell, "source": source}
            if removed:  # OverwriteCells checks a locked cell against its checksum: the visible one's
                entry["checksum"] = _checksum(name, entry, index.points.get(nb, {}).get(name))
            out.cells[nb][name] = entry
    return out


def _checksum(name: str, cell: dict, points: float | None) -> str:
    """nbgrader's checksum of a (locked) source cell with this source."""
    meta = {"grade": points is not None, "solution": False, "locked": bool(cell["locked"]), "grade_id": name}
    if points is not None:
        meta["points"] = points
    node = nbformat.v4.new_code_cell(cell["source"]) if cell["cell_type"] == "code" \
        else nbformat.v4.new_markdown_cell(cell["source"])
    node.metadata["nbgrader"] = meta
    return utils.compute_checksum(node)


def visible_test_cells(index: SourceIndex) -> dict[str, set[str]]:
    """Per notebook, the autograder test cells that still test something once hidden regions are
    gone (`index` being a `visible_index`): a test cell made only of hidden tests is not reported."""
    out: dict[str, set[str]] = {}
    for nb, cells in index.cells.items():
        graded = index.points.get(nb, {})
        out[nb] = {name for name, c in cells.items()
                   if name in graded and c["cell_type"] == "code" and c["locked"] and has_code(c["source"] or "")}
    return out


def _error_line(cell: NotebookNode) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            text = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip().rstrip(":")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            return (lines[-1] if lines else text)[:MAX_ERROR]
    return ""


def results(notebook: str, finished: str, wanted: set[str]) -> list[CellResult]:
    """The test cells `wanted` of one finished (executed) notebook, in notebook order."""
    nb = nbformat.reads(finished, as_version=4)
    out = []
    for cell in nb.cells:
        if not utils.is_grade(cell) or utils.is_solution(cell):
            continue
        cell_id = cell.metadata["nbgrader"]["grade_id"]
        if cell_id not in wanted:
            continue
        score, points = utils.determine_grade(cell)
        passed = score is not None and points is not None and score >= points
        out.append(CellResult(notebook, cell_id, passed, float(points or 0), "" if passed else _error_line(cell)))
    return out


def summary(tests: list[CellResult]) -> str:
    """'3 of 4 visible tests pass; failing: test-mean.' (what the student reads first)."""
    if not tests:
        return "This assignment has no visible tests to run."
    passed = sum(t.passed for t in tests)
    noun = "test passes" if len(tests) == 1 and passed == 1 else "tests pass"
    text = f"{passed} of {len(tests)} visible {noun}"
    failing = [t.cell_id for t in tests if not t.passed]
    if not failing:
        return text + "."
    names = ", ".join(failing[:3]) + (f" and {len(failing) - 3} more" if len(failing) > 3 else "")
    return f"{text}; failing: {names}."


def as_dicts(tests: list[CellResult]) -> list[dict]:
    return [asdict(t) for t in tests]
