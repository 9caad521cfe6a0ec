"""nbgrader's autograde steps, built from the course's nbgrader config, split where the sandbox boundary falls.

`nbgrader autograde` converts each notebook twice (nbgrader/converters/autograde.py), with the
preprocessor lists `c.Autograde.sanitize_preprocessors` and `c.Autograde.autograde_preprocessors`
(defaults mirrored in `NBGRADER_SANITIZE` / `NBGRADER_AUTOGRADE`; a test fails if nbgrader's change):
  sanitize:  ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata
  autograde: Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
             AssignLatePenalties, CheckCellMetadata
`pipeline(config)` reads both lists from the course's nbgrader config (classes or dotted names, as
nbgrader accepts them) and refuses, with a `PipelineError` that names the setting, anything it
cannot run faithfully: an unimportable name, a class that is not an nbconvert preprocessor, a
subclass of a step coursehub runs its own way, or a list without Execute/SaveAutoGrades/
AssignLatePenalties. A step a course adds runs where nbgrader would run it; if it raises, that is
the course's fault (`CourseStepError`), never the student's. The differences are only where steps run:
- `sanitize` (outside the sandbox) reads source cells from a `SourceIndex` instead of opening the
  gradebook; locked and test cells are restored from the source here, before any student code runs.
- `Execute` runs against a sandboxed kernel (see execute.py).
- steps listed before Execute in `autograde_preprocessors` run at the end of `sanitize`;
- `finish` (outside the sandbox) runs the steps after Execute; SaveAutoGrades and
  AssignLatePenalties run in the gradebook writer (gradebook.py), on the notebook `finish` returns.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import ClearMetadataPreprocessor, Preprocessor
from nbgrader import utils
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from nbgrader.preprocessors.base import NbGraderPreprocessor
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from .sources import SourceIndex


class _CachedJsonschema:
    """Stands in for the `jsonschema` module inside nbgrader's metadata validator.

    `jsonschema.validate(instance, schema)` re-checks the schema and builds a validator on every
    call; nbgrader calls it for every cell of every notebook. Same schema, same validator class,
    same checks and errors; the validator is just built once per schema. Only speed changes.
    nbgrader reads its schema file again for every notebook (a new dict each time), so schemas are
    told apart by their content, not their identity: one entry per schema version, however many
    notebooks a worker grades.
    """

    def __init__(self, real) -> None:
        self._real = real
        self._validators: dict[str, object] = {}
        self._last: tuple[object, object] | None = None  # (schema dict, its validator): nbgrader's cells in a row

    def validate(self, instance, schema, *args, **kw) -> None:
        if args or kw:
            return self._real.validate(instance, schema, *args, **kw)
        if self._last is not None and self._last[0] is schema:
            v = self._last[1]
        else:
            key = json.dumps(schema, sort_keys=True)
            v = self._validators.get(key)
            if v is None:
                cls = self._real.validators.validator_for(schema)
                cls.check_schema(schema)
                v = self._validators[key] = cls(schema)
            self._last = (schema, v)
        v.validate(instance)

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


#: nbgrader's default `Autograde.sanitize_preprocessors` (tests compare with nbgrader's own).
NBGRADER_SANITIZE: tuple[type, ...] = (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                       CheckCellMetadata)
#: nbgrader's default `Autograde.autograde_preprocessors`.
NBGRADER_AUTOGRADE: tuple[type, ...] = (Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata)
#: nbgrader steps that need the gradebook: coursehub runs its own version of exactly these classes.
_INDEXED: dict[type, type] = {OverwriteCells: IndexedOverwriteCells, OverwriteKernelspec: IndexedOverwriteKernelspec}
#: Steps coursehub runs elsewhere: Execute in the sandbox, the other two in the gradebook writer.
_ELSEWHERE = (Execute, SaveAutoGrades, AssignLatePenalties)
_OWN_STEPS = set(NBGRADER_SANITIZE) | set(NBGRADER_AUTOGRADE) | set(_INDEXED.values())


class PipelineError(ValueError):
    """The course's nbgrader autograde configuration cannot be run; the message says what to fix."""


class CourseStepError(RuntimeError):
    """A preprocessor the course added raised: a fault of the course's configuration, not a score."""


@dataclass(frozen=True)
class Pipeline:
    """The steps of one course's autograde, in nbgrader's order, split at the sandbox boundary."""

    #: before the sandbox: the sanitize list, then any autograde steps listed before Execute
    sanitize: tuple[type, ...]
    #: after the sandboxed Execute, before the gradebook writer's SaveAutoGrades/AssignLatePenalties
    finish: tuple[type, ...]


def _resolve(item: Any, setting: str) -> type:
    where = f"the course's nbgrader_config.py, c.Autograde.{setting}"
    if isinstance(item, str):
        try:
            item = import_item(item)
        except Exception as e:  # noqa: BLE001 - any import failure is the same problem to the reader
            raise PipelineError(f"{where} names {item!r}, which cannot be imported "
                                f"({type(e).__name__}: {e}); autograde refused") from None
    if not (isinstance(item, type) and issubclass(item, Preprocessor)):
        raise PipelineError(f"{where} contains {item!r}, which is not an nbconvert Preprocessor class; "
                            "autograde refused")
    for own in (*_INDEXED, *_ELSEWHERE):
        if issubclass(item, own) and item is not own:
            raise PipelineError(f"{where} contains {item.__module__}.{item.__qualname__}, a subclass of nbgrader's "
                                f"{own.__name__}, which coursehub runs its own way (configure {own.__name__}'s "
                                "options instead); autograde refused")
    return item


def _configured(config: Config, setting: str, default: tuple[type, ...]) -> list:
    section = config.get("Autograde", {})
    return list(section[setting]) if setting in section else list(default)


def pipeline(config: Config) -> Pipeline:
    """The course's autograde steps, from `c.Autograde.sanitize_preprocessors` and
    `autograde_preprocessors` as nbgrader reads them; raises PipelineError for what cannot run."""
    sanitize = [_resolve(x, "sanitize_preprocessors")
                for x in _configured(config, "sanitize_preprocessors", NBGRADER_SANITIZE)]
    autograde = [_resolve(x, "autograde_preprocessors")
                 for x in _configured(config, "autograde_preprocessors", NBGRADER_AUTOGRADE)]
    for cls in sanitize:
        if cls in _ELSEWHERE:
            raise PipelineError(f"the course's nbgrader_config.py, c.Autograde.sanitize_preprocessors contains "
                                f"{cls.__name__}, which coursehub only runs in the autograde pass; autograde refused")
    for cls in _ELSEWHERE:
        if autograde.count(cls) != 1:
            raise PipelineError(f"the course's nbgrader_config.py, c.Autograde.autograde_preprocessors must list "
                                f"nbgrader's {cls.__name__} exactly once (coursehub always runs it); autograde refused")
    cut = autograde.index(Execute)
    before = [_INDEXED.get(c, c) for c in [*sanitize, *autograde[:cut]]]
    after = [_INDEXED.get(c, c) for c in autograde[cut + 1:] if c not in _ELSEWHERE]
    return Pipeline(sanitize=tuple(before), finish=tuple(after))


class _Guarded:
    """A course-added step: its exceptions become CourseStepError (the course's fault)."""

    def __init__(self, step: Preprocessor) -> None:
        self.step = step

    def __call__(self, nb, resources):
        try:
            return self.step(nb, resources)
        except Exception as e:  # noqa: BLE001 - re-raised, attributed to the course's configuration
            name = f"{type(self.step).__module__}.{type(self.step).__qualname__}"
            raise CourseStepError(f"the course's autograde step {name} failed: {type(e).__name__}: {e}") from e


def _exporter(config: Config, steps: tuple[type, ...]) -> NotebookExporter:
    c = Config(config)
    c.Exporter.default_preprocessors = []
    exporter = NotebookExporter(config=c)
    for cls in steps:
        pp = cls(parent=exporter)  # the exporter's config, as nbgrader's register_preprocessor does
        # each step keeps its own `enabled`, as nbgrader does
        exporter.register_preprocessor(pp if cls in _OWN_STEPS else _Guarded(pp))
    return exporter


def resources_for(student: str, assignment: str, notebook: str, index: SourceIndex | None = None) -> dict[str, Any]:
    """The resources dict nbgrader's converter builds for one notebook (without a database URL)."""
    return {
        "unique_key": notebook,
        "output_files_dir": f"{notebook}_files",
        "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                     "db_url": None, "source_index": index},
    }


class _Exporters(threading.local):
    """Per thread: (id of a course's config, pass) -> (that config, its exporter). nbgrader's
    converter also builds its exporter and preprocessors once per run and reuses them for every
    notebook; building them per notebook (traitlets configuration, the pipeline's imports) was a
    third of each step's time. Per thread, because steps keep per-notebook state while they run
    (OverwriteCells' notebook and assignment) and the instant-feedback runner grades in threads."""

    def __init__(self) -> None:
        self.by_config: dict[tuple[int, str], tuple[Config, NotebookExporter]] = {}


_EXPORTERS = _Exporters()


def _exporter_for(config: Config, which: str) -> NotebookExporter:
    cache = _EXPORTERS.by_config
    cached = cache.get((id(config), which))  # the entry keeps its config alive: the id stays its own
    if cached is not None:
        return cached[1]
    exporter = _exporter(config, getattr(pipeline(config), which))
    if len(cache) >= 16:  # one course per worker in practice; never grows without end
        cache.clear()
    cache[(id(config), which)] = (config, exporter)
    return exporter


def sanitize(nb_json: str, resources: dict, config: Config) -> str:
    """Before the sandbox: clear outputs, restore locked/test cells and metadata from the source
    (the course's sanitize steps, then its autograde steps listed before Execute)."""
    nb = nbformat.reads(nb_json, as_version=4)
    output, _ = _exporter_for(config, "sanitize").from_notebook_node(nb, resources=dict(resources))
    return output


def finish(executed: nbformat.NotebookNode, resources: dict, config: Config) -> str:
    """After Execute: the course's steps nbgrader runs before saving grades (output cleaning)."""
    output, _ = _exporter_for(config, "finish").from_notebook_node(executed, resources=dict(resources))
    return output


def cell_scores(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """Per grade cell: auto score and max score, as nbgrader's SaveAutoGrades computes them."""
    out = {}
    for cell in nb.cells:
        if utils.is_grade(cell):
            auto, max_points = utils.determine_grade(cell)
            out[cell.metadata["nbgrader"]["grade_id"]] = {"auto_score": auto, "max_score": max_points}
    return out
