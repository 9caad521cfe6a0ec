"""A read-only snapshot of an assignment's source cells, taken from the gradebook once.

nbgrader's sanitizing steps (OverwriteCells, OverwriteKernelspec) look source cells up in the
gradebook, opening a database connection per notebook. `SourceIndex` answers the same calls from
memory, so the steps run unchanged (same code, same results) in any worker, without database access,
and can be shipped to a worker process or a Kubernetes job as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from nbgrader.api import Gradebook, MissingEntry


@dataclass
class SourceIndex:
    assignment: str
    #: notebook -> grade_id -> {cell_type, locked, checksum, source}
    cells: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: notebook -> grade_id -> max_score (grade cells only)
    points: dict[str, dict[str, float]] = field(default_factory=dict)
    #: notebook -> kernelspec JSON (or None)
    kernelspecs: dict[str, str | None] = field(default_factory=dict)
    #: notebook -> task cell ids, solution cell ids
    tasks: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, gb: Gradebook, assignment: str) -> SourceIndex:
        a = gb.find_assignment(assignment)
        idx = cls(assignment=assignment)
        for nb in a.notebooks:
            idx.kernelspecs[nb.name] = nb.kernelspec
            idx.cells[nb.name] = {
                c.name: {"cell_type": c.cell_type, "locked": c.locked, "checksum": c.checksum, "source": c.source}
                for c in nb.source_cells
            }
            idx.points[nb.name] = {g.name: float(g.max_score) for g in nb.grade_cells}
            idx.tasks[nb.name] = [t.name for t in nb.task_cells]
        return idx

    @property
    def notebooks(self) -> list[str]:
        return sorted(self.cells)

    def max_score(self) -> float:
        return sum(sum(p.values()) for p in self.points.values())

    # -- the Gradebook calls nbgrader's sanitizing preprocessors make --------------------------------
    def find_source_cell(self, name: str, notebook: str, assignment: str) -> SimpleNamespace:
        try:
            return SimpleNamespace(name=name, **self.cells[notebook][name])
        except KeyError:
            raise MissingEntry() from None

    def find_graded_cell(self, name: str, notebook: str, assignment: str) -> SimpleNamespace:
        try:
            return SimpleNamespace(name=name, max_score=self.points[notebook][name])
        except KeyError:
            raise MissingEntry() from None

    def find_notebook(self, notebook: str, assignment: str) -> SimpleNamespace:
        if notebook not in self.cells:
            raise MissingEntry()
        return SimpleNamespace(name=notebook, kernelspec=self.kernelspecs.get(notebook))

    def __deepcopy__(self, memo) -> SourceIndex:
        return self  # read-only: nbconvert deep-copies resources per step, no need to copy this

    def __enter__(self) -> SourceIndex:
        return self

    def __exit__(self, *exc) -> None:
        return None
