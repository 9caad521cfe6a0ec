"""Apply autograde results to the course's nbgrader gradebook, the way `nbgrader autograde` does.

One writer per course holds one `nbgrader.api.Gradebook` open (SQLite file or PostgreSQL URL) and
applies results one at a time, so there is a single serialized writer however many workers grade.
Each submission is one transaction: nbgrader's steps commit after every grade cell; here those
commits are flushes and the writer commits once (an error leaves nothing of the submission).
Per submission it does what nbgrader's Autograde converter does around execution: create/update the
student and the submission (with the timestamp from timestamp.txt), give missing notebooks zero,
then run nbgrader's own SaveAutoGrades and AssignLatePenalties steps on each finished notebook, and
write the finished notebooks to autograded/<student>/<assignment>/ for the formgrader and feedback.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import nbformat
from nbgrader.api import BaseCell, Comment, Grade, Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.preprocessors.base import NbGraderPreprocessor
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from ..gradebook import create_gradebook
from . import steps
from .grader import SubmissionResult


class _NotebookRows:
    """The gradebook as nbgrader's SaveAutoGrades sees it while it saves one submitted notebook:
    that notebook's grades and comments are read in two queries up front, and `find_grade` /
    `find_comment` answer from them. nbgrader's own lookups join seven tables per cell (the
    parent's largest cost per submission, and a serial one). Same rows, same precedence (a grade
    cell's grade before a task cell's of the same name, a solution cell's comment before a task
    cell's); anything else, a cell not found included, goes to the real gradebook and its errors."""

    _GRADED = {"GradeCell": 0, "TaskCell": 1}
    _COMMENTED = {"SolutionCell": 0, "TaskCell": 1}

    def __init__(self, gradebook: Gradebook, notebook: str, assignment: str, student: str) -> None:
        self._gb = gradebook
        self._key = (notebook, assignment, student)
        try:
            submitted = gradebook.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:  # nbgrader raises at its first lookup, if the notebook has a graded cell
            self._grades = self._comments = {}
            return
        self._grades = self._by_cell_name(Grade, submitted.id, self._GRADED)
        self._comments = self._by_cell_name(Comment, submitted.id, self._COMMENTED)

    def _by_cell_name(self, model, notebook_id: str, rank: dict[str, int]) -> dict:
        rows = (self._gb.db.query(model, BaseCell.name, BaseCell.type)
                .join(BaseCell, BaseCell.id == model.cell_id)
                .filter(model.notebook_id == notebook_id, BaseCell.type.in_(list(rank))).all())
        found: dict = {}
        for row, name, _type in sorted(rows, key=lambda r: rank[r[2]]):
            found.setdefault(name, row)
        return found

    def find_grade(self, grade_cell: str, notebook: str, assignment: str, student: str) -> Grade:
        grade = self._grades.get(grade_cell) if (notebook, assignment, student) == self._key else None
        return grade if grade is not None else self._gb.find_grade(grade_cell, notebook, assignment, student)

    def find_comment(self, solution_cell: str, notebook: str, assignment: str, student: str) -> Comment:
        comment = self._comments.get(solution_cell) if (notebook, assignment, student) == self._key else None
        return comment if comment is not None else self._gb.find_comment(solution_cell, notebook, assignment, student)

    def __getattr__(self, name: str):
        return getattr(self._gb, name)


class _SaveAutoGrades(SaveAutoGrades):
    """nbgrader's SaveAutoGrades on an already open gradebook (no connection per notebook), with
    one notebook's grades and comments read at once (`_NotebookRows`)."""

    def __init__(self, gradebook: Gradebook, **kw) -> None:
        super().__init__(**kw)
        self._gb = gradebook

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.gradebook = _NotebookRows(self._gb, self.notebook_id, self.assignment_id, self.student_id)
        return NbGraderPreprocessor.preprocess(self, nb, resources)


class _AssignLatePenalties(AssignLatePenalties):
    """nbgrader's AssignLatePenalties (same plugin, same checks) on an already open gradebook."""

    def __init__(self, gradebook: Gradebook, **kw) -> None:
        super().__init__(**kw)
        self._gb = gradebook

    def preprocess(self, nb, resources):
        student, assignment = resources["nbgrader"]["student"], resources["nbgrader"]["assignment"]
        self.init_plugin()
        gb = self._gb
        submission = gb.find_submission(assignment, student)
        notebook = gb.find_submission_notebook(resources["nbgrader"]["notebook"], assignment, student)
        notebook.late_submission_penalty = None
        if submission.total_seconds_late > 0:
            penalty = self.plugin_inst.late_submission_penalty(student, notebook.score, submission.total_seconds_late)
            if penalty is not None:
                notebook.late_submission_penalty = self._check_late_penalty(notebook, penalty)
        gb.db.commit()
        return nb, resources


class _OneTransaction:
    """The gradebook's session while one submission is written: nbgrader's commit after every grade
    cell becomes a flush, so the submission is one transaction, committed once by the writer (and
    rolled back whole on an error). Queries in between still see the flushed rows."""

    def __init__(self, session) -> None:  # noqa: ANN001 - a SQLAlchemy (scoped) session
        self._session = session

    def commit(self) -> None:
        self._session.flush()

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class GradebookWriter:
    def __init__(self, db_url: str, course_id: str, course_dir: Path | None = None,
                 config: Config | None = None) -> None:
        create_gradebook(db_url, course_id)  # nbgrader's own first creation races other processes
        self.gb = Gradebook(db_url, course_id)
        self.course_dir = course_dir
        self.config = config or Config()

    def close(self) -> None:
        self.gb.close()

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def apply(self, result: SubmissionResult, timestamp=None, files: dict[str, bytes] | None = None) -> None:
        """Write one submission's grades. Safe to repeat: applying the same result twice gives the
        same gradebook state (grades are set, not added). An "invalid" submission (a file that is
        not a gradable notebook) writes nothing, as `nbgrader autograde` writes nothing for it."""
        if result.status in ("invalid", "environment-mismatch"):  # neither is a score (envparity.MISMATCH)
            return
        if result.status == "failed":
            raise ValueError(f"refusing to write grades for a failed run of {result.student}/{result.assignment}")
        session = self.gb.db
        self.gb.db = _OneTransaction(session)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SAWarning)  # nbgrader's own autoflush chatter
                self._apply(result, timestamp, files)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            self.gb.db = session

    def _apply(self, result: SubmissionResult, timestamp, files: dict[str, bytes] | None) -> None:
        gb = self.gb
        gb.update_or_create_student(result.student)
        if timestamp is not None:
            gb.update_or_create_submission(result.assignment, result.student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(result.assignment, result.student)
        graded = {n.name for n in result.notebooks}
        for notebook in gb.find_assignment(result.assignment).notebooks:
            if notebook.name not in graded:  # not submitted: zero, as nbgrader does
                sub_nb = gb.find_submission_notebook(notebook.name, result.assignment, result.student)
                for grade in sub_nb.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
        for n in result.notebooks:
            nb = nbformat.reads(n.notebook, as_version=4)
            res = steps.resources_for(result.student, result.assignment, n.name)
            nb, res = _SaveAutoGrades(gb, config=self.config).preprocess(nb, res)
            gb.db.flush()
            gb.db.expire_all()  # the notebook's score (a SQL column property) is read from the new grades
            _AssignLatePenalties(gb, config=self.config).preprocess(nb, res)
        if self.course_dir is not None:
            self._write_autograded(result, files or {})

    def _write_autograded(self, result: SubmissionResult, files: dict[str, bytes]) -> None:
        dest = self.course_dir / "autograded" / result.student / result.assignment
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for rel, data in files.items():
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for n in result.notebooks:
            (dest / f"{n.name}.ipynb").write_text(n.notebook)
        for dirname, _, filenames in os.walk(dest):
            for f in filenames:
                os.chmod(os.path.join(dirname, f), 0o444)
