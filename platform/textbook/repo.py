"""The content repository of a course's textbook: what nbgitpuller clones into students' servers.

On the local platform coursehub keeps one bare git repository per course under the state folder
and commits the textbook folder to it whenever the folder changed. Notebooks are committed in
nbformat's canonical layout (the one Jupyter writes when a student saves), so a student's save
changes only the lines they edited and nbgitpuller's merge keeps their edits next to ours.
At scale the course's own git remote (`textbook.repo`) is the content repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat

from ..courses import Course
from ..errors import ConfigError, Problem
from ..settings import Settings
from .links import local_repo_path

#: Folders and files of a textbook folder that are never part of the book.
SKIPPED_DIRS = {"_build", "__pycache__", ".ipynb_checkpoints", ".git"}

_IDENTITY = {
    "GIT_AUTHOR_NAME": "coursehub", "GIT_AUTHOR_EMAIL": "coursehub@localhost",
    "GIT_COMMITTER_NAME": "coursehub", "GIT_COMMITTER_EMAIL": "coursehub@localhost",
}


def source_files(folder: Path) -> Iterator[Path]:
    """The textbook's files (relative paths, sorted): no hidden files, build output or checkpoints."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in rel.parts):
            continue
        if path.is_file():
            yield rel


def canonical_notebook(path: Path) -> str:
    """The notebook as Jupyter itself writes it (raises ConfigError if it is not a notebook)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any parse failure is the same problem for the author
        raise ConfigError([Problem(path, "", f"not a readable notebook: {e}")]) from None
    return nbformat.writes(nb)


def stage_textbook(folder: Path, dest: Path) -> list[str]:
    """Copy the textbook's files into `dest`, notebooks in canonical form; returns the relative paths."""
    files = []
    for rel in source_files(folder):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == ".ipynb":
            target.write_text(canonical_notebook(folder / rel), encoding="utf-8")
        else:
            shutil.copy2(folder / rel, target)
        files.append(rel.as_posix())
    return files


def git(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "LANG": "C", **_IDENTITY, **(env or {})},
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_repo(repo: Path, branch: str) -> None:
    """Create the bare repository (HEAD on `branch`) if it does not exist yet."""
    if (repo / "HEAD").is_file():
        return
    repo.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{repo.name}.", dir=repo.parent))
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(tmp))
    try:
        tmp.rename(repo)  # another process may have won the race: theirs is as good as ours
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def head(repo: Path, branch: str) -> str | None:
    try:
        return git("--git-dir", str(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    except RuntimeError:
        return None


def sync_content_repo(course: Course, settings: Settings, message: str | None = None) -> str | None:
    """Commit the course's textbook folder to its local content repository if it changed.

    Returns the new commit's id, or None when nothing changed (or the course uses a git remote,
    which its authors push to themselves).
    """
    if course.textbook is None or course.textbook.repo:
        return None
    folder = course.textbook_dir()
    if folder is None or not folder.is_dir():
        raise ConfigError([Problem(course.folder, "textbook.path", "textbook folder not found")])
    repo = local_repo_path(settings, course.id)
    branch = course.textbook.branch
    ensure_repo(repo, branch)
    with tempfile.TemporaryDirectory(prefix="coursehub-textbook-") as tmp:
        tree_dir = Path(tmp) / "tree"
        tree_dir.mkdir()
        stage_textbook(folder, tree_dir)
        env = {"GIT_DIR": str(repo), "GIT_WORK_TREE": str(tree_dir), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("add", "--all", ".", env=env, cwd=tree_dir)
        tree = git("write-tree", env=env, cwd=tree_dir)
    parent = head(repo, branch)
    if parent is not None and git("--git-dir", str(repo), "rev-parse", f"{parent}^{{tree}}") == tree:
        return None
    args = ["--git-dir", str(repo), "commit-tree", tree, "-m", message or f"Update the {course.id} textbook"]
    if parent:
        args[4:4] = ["-p", parent]
    commit = git(*args)
    # Compare-and-swap: a concurrent sync that moved the branch makes this one fail loudly.
    git("--git-dir", str(repo), "update-ref", f"refs/heads/{branch}", commit, parent or "0" * 40)
    return commit
