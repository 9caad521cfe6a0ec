"""An nbgrader course directory, read the way `nbgrader autograde` reads it.

Same input: <course>/nbgrader_config.py (optional), <course>/source/<assignment>/,
<course>/submitted/<student>/<assignment>/, the gradebook from CourseDirectory.db_url (by default
<course>/gradebook.db). If the gradebook does not know the assignment yet, `nbgrader
generate_assignment` is run first, exactly as an instructor would.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
import sys
from pathlib import Path

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..gradebook import create_gradebook
from .grader import SubmissionJob
from .sources import SourceIndex


class CourseError(RuntimeError):
    """The course directory is not usable; the message says what to fix."""


def _venv_env() -> dict[str, str]:
    """nbgrader creates a new gradebook by calling `alembic`; make sure ours is found."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class NbgraderCourse:
    """An instructor's nbgrader course directory (config, gradebook, submissions); the catalog's
    course definition is `coursehub.platform.courses.Course`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise CourseError(f"{self.root}: no such course directory")
        self.config = self._load_config()
        self.coursedir = CourseDirectory(config=self.config)
        self.coursedir.root = str(self.root)
        os.environ["PATH"] = _venv_env()["PATH"]

    def _load_config(self) -> Config:
        cfg = Config()
        path = self.root / "nbgrader_config.py"
        if path.is_file():
            cfg.merge(PyFileConfigLoader(path.name, path=str(self.root)).load_config())
        return cfg

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id or "default_course"

    def gradebook(self) -> Gradebook:
        create_gradebook(self.db_url, self.course_id)  # nbgrader's own first creation races other processes
        return Gradebook(self.db_url, self.course_id)

    def ensure_assignment(self, assignment: str) -> None:
        """Run `nbgrader generate_assignment` if the gradebook has no source cells for it yet."""
        with self.gradebook() as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
        if not (self.root / "source" / assignment).is_dir():
            raise CourseError(f"{self.root}/source/{assignment}: no such assignment source folder")
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--log-level=ERROR"],
            cwd=self.root, env=_venv_env(), capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise CourseError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stdout}{proc.stderr}")

    def source_index(self, assignment: str) -> SourceIndex:
        with self.gradebook() as gb:
            return SourceIndex.load(gb, assignment)

    def students(self, assignment: str) -> list[str]:
        base = self.root / "submitted"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir())

    def submission_dir(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def timestamp(self, student: str, assignment: str):
        return self.coursedir.get_existing_timestamp(str(self.submission_dir(student, assignment)))

    def job(self, student: str, assignment: str, index: SourceIndex) -> SubmissionJob:
        """The submission as data: its notebooks (those the gradebook knows) and the other files the
        kernel sees: the submission's own files, overwritten by the source's (as nbgrader does).
        A submission whose files cannot be read gets `invalid` set (a reason), never an exception:
        one bad submission must not stop a run. Only regular files are read (no symlinks, fifos)."""
        sub = self.submission_dir(student, assignment)
        notebooks: dict[str, str] = {}
        problems: list[str] = []
        for p in sorted(sub.glob("*.ipynb")):
            if p.stem not in index.cells:
                continue
            text, problem = _read_notebook(p)
            if problem:
                problems.append(problem)
            else:
                notebooks[p.stem] = text
        files: dict[str, bytes] = {}
        ignore = list(self.coursedir.ignore) + ["*.ipynb"]
        try:
            own = _regular_files(sub, ignore)
        except RecursionError:
            own, problems = [], [*problems, "its folders are nested too deeply to be read"]
        for f in own:
            try:
                files[os.path.relpath(f, sub)] = Path(f).read_bytes()
            except OSError as e:
                problems.append(f"{os.path.relpath(f, sub)}: cannot be read ({e.strerror})")
        return self._with_source(SubmissionJob(student=student, assignment=assignment, notebooks=notebooks,
                                               files=files, invalid="; ".join(problems)))

    def job_from_files(self, student: str, assignment: str, index: SourceIndex,
                       submitted: dict[str, bytes]) -> SubmissionJob:
        """The same job as `job`, from a submission's files as the grading service stored them
        (relative path -> bytes, checksum already verified): what the queue worker grades, so an
        edit to submitted/ after collect changes nothing. The course's `ignore` patterns apply."""
        notebooks: dict[str, str] = {}
        files: dict[str, bytes] = {}
        problems: list[str] = []
        ignore = list(self.coursedir.ignore)
        for rel, data in sorted(submitted.items()):
            parts = Path(rel).parts
            if any(fnmatch.fnmatch(part, pat) for part in parts for pat in ignore):
                continue
            if len(parts) == 1 and rel.endswith(".ipynb"):
                if rel[: -len(".ipynb")] not in index.cells:
                    continue
                try:
                    notebooks[rel[: -len(".ipynb")]] = data.decode("utf-8")
                except UnicodeDecodeError as e:
                    problems.append(f"{rel} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                                    "save it again from Jupyter")
            elif not rel.endswith(".ipynb"):
                files[rel] = data
        return self._with_source(SubmissionJob(student=student, assignment=assignment, notebooks=notebooks,
                                               files=files, invalid="; ".join(problems)))

    def _with_source(self, job: SubmissionJob) -> SubmissionJob:
        """Overwrite the submission's other files with the source's, as nbgrader does (except the
        course's `Autograde.exclude_overwriting`)."""
        source = self.root / "source" / job.assignment
        ignore = list(self.coursedir.ignore) + ["*.ipynb"]
        exclude = set(self.config.get("Autograde", {}).get("exclude_overwriting", {}).get(job.assignment, []))
        for f in _regular_files(source, ignore):
            rel = os.path.relpath(f, source)
            if rel not in exclude:
                job.files[rel] = Path(f).read_bytes()
        return job

    def already_graded(self, student: str, assignment: str) -> bool:
        """nbgrader's rule: skip if autograded/ exists and the submission is not newer."""
        dest = self.root / "autograded" / student / assignment
        if not dest.exists():
            return False
        new = self.timestamp(student, assignment)
        old = self.coursedir.get_existing_timestamp(str(dest))
        return not (new is not None and old is not None and new > old)


def _read_notebook(p: Path) -> tuple[str, str]:
    """(text, "") or ("", what is wrong with it, in words a student and an instructor understand)."""
    if p.is_symlink() or not p.is_file():
        kind = "a symbolic link" if p.is_symlink() else "a folder" if p.is_dir() else "not a regular file"
        return "", f"{p.name} is {kind}, not a notebook"
    try:
        data = p.read_bytes()
    except OSError as e:
        return "", f"{p.name} cannot be read ({e.strerror})"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as e:
        return "", f"{p.name} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); save it again from Jupyter"


def _regular_files(root: Path, ignore: list[str]) -> list[str]:
    """nbgrader's find_all_files, keeping only regular files (never following a symlink)."""
    out = []
    for f in utils.find_all_files(str(root), ignore):
        try:
            if stat.S_ISREG(os.lstat(f).st_mode):
                out.append(f)
        except OSError:
            continue
    return out
