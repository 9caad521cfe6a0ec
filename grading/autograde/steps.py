"""nbgrader's autograde steps, run as nbgrader runs them, split where the sandbox boundary falls.

`nbgrader autograde` converts each notebook twice (nbgrader/converters/autograde.py):
  sanitize:  ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata
  autograde: Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
             AssignLatePenalties, CheckCellMetadata
We run the same preprocessor classes through the same nbconvert exporter, in the same order, with the
course's nbgrader configuration. The only differences are where they run:
- `sanitize` (outside the sandbox) reads source cells from a `SourceIndex` instead of opening the
  gradebook; locked and test cells are restored from the source here, before any student code runs.
- `Execute` runs against a sandboxed kernel (see execute.py).
- `finish` (outside the sandbox) runs the output-cleaning steps; SaveAutoGrades and
  AssignLatePenalties run in the gradebook writer (gradebook.py), on the notebook `finish` returns.
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader import utils
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
)
from nbgrader.preprocessors.base import NbGraderPreprocessor
from traitlets.config import Config

from .sources import SourceIndex


class _CachedJsonschema:
    """Stands in for the `jsonschema` module inside nbgrader's metadata validator.

    `jsonschema.validate(instance, schema)` re-checks the schema and builds a validator on every
    call; nbgrader calls it for every cell of every notebook. Same schema, same validator class,
    same checks and errors; the validator is just built once. Only speed changes.
    """

    def __init__(self, real) -> None:
        self._real = real
        self._validators: dict[int, object] = {}

    def validate(self, instance, schema, *args, **kw) -> None:
        if args or kw:
            return self._real.validate(instance, schema, *args, **kw)
        v = self._validators.get(id(schema))
        if v is None:
            cls = self._real.validators.validator_for(schema)
            cls.check_schema(schema)
            v = self._validators[id(schema)] = (cls(schema), schema)
        v[0].validate(instance)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _speed_up_metadata_validation() -> None:
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _CachedJsonschema):
        common.jsonschema = _CachedJsonschema(common.jsonschema)


_speed_up_metadata_validation()


class IndexedOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, reading source cells from a SourceIndex."""

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.gradebook = resources["nbgrader"]["source_index"]
        if self.add_missing_cells:
            raise NotImplementedError("OverwriteCells.add_missing_cells is not supported by coursehub autograde")
        return NbGraderPreprocessor.preprocess(self, nb, resources)


class IndexedOverwriteKernelspec(OverwriteKernelspec):
    """nbgrader's OverwriteKernelspec, reading the source kernelspec from a SourceIndex."""

    def preprocess(self, nb, resources):
        index: SourceIndex = resources["nbgrader"]["source_index"]
        kernelspec = index.find_notebook(resources["nbgrader"]["notebook"], index.assignment).kernelspec
        if kernelspec:
            nb.metadata["kernelspec"] = json.loads(kernelspec)
        return nb, resources


def _exporter(config: Config, preprocessors: list) -> NotebookExporter:
    c = Config(config)
    c.Exporter.default_preprocessors = []
    exporter = NotebookExporter(config=c)
    for pp in preprocessors:
        exporter.register_preprocessor(pp)  # keeps each step's own `enabled`, as nbgrader does
    return exporter


def resources_for(student: str, assignment: str, notebook: str, index: SourceIndex | None = None) -> dict[str, Any]:
    """The resources dict nbgrader's converter builds for one notebook (without a database URL)."""
    return {
        "unique_key": notebook,
        "output_files_dir": f"{notebook}_files",
        "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                     "db_url": None, "source_index": index},
    }


def sanitize(nb_json: str, resources: dict, config: Config) -> str:
    """Pass 1: clear outputs, restore locked/test cells and metadata from the source."""
    pps = [ClearOutput(config=config), DeduplicateIds(config=config), IndexedOverwriteKernelspec(config=config),
           IndexedOverwriteCells(config=config), CheckCellMetadata(config=config)]
    nb = nbformat.reads(nb_json, as_version=4)
    output, _ = _exporter(config, pps).from_notebook_node(nb, resources=dict(resources))
    return output


def finish(executed: nbformat.NotebookNode, resources: dict, config: Config) -> str:
    """Pass 2 after Execute: the output-cleaning steps nbgrader runs before saving grades."""
    pps = [IgnorePattern(config=config), ClearMetadataPreprocessor(config=config), LimitOutput(config=config)]
    output, _ = _exporter(config, pps).from_notebook_node(executed, resources=dict(resources))
    return output


def cell_scores(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """Per grade cell: auto score and max score, as nbgrader's SaveAutoGrades computes them."""
    out = {}
    for cell in nb.cells:
        if utils.is_grade(cell):
            auto, max_points = utils.determine_grade(cell)
            out[cell.metadata["nbgrader"]["grade_id"]] = {"auto_score": auto, "max_score": max_points}
    return out
