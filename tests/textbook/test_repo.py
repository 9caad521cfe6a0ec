"""The content repository: commits only when the textbook changed, in Jupyter's own notebook format,
and nbgitpuller keeps a student's edits when it merges an update."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbgitpuller.pull import GitPuller

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_course
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import load_settings
from coursehub.platform.textbook.links import content_repo_url, local_repo_path
from coursehub.platform.textbook.repo import sync_content_repo


@pytest.fixture
def course_and_settings(tmp_path: Path):
    shutil.copytree(SOURCE_ROOT / "courses" / "demo-101", tmp_path / "courses" / "demo-101")
    settings = load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(tmp_path / "courses"))
    return load_course(tmp_path / "courses" / "demo-101"), settings


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def pull(url: str, dest: Path) -> list[str]:
    return list(GitPuller(url, str(dest), branch="main").pull())


def test_sync_commits_once_per_change_and_skips_build_output(course_and_settings):
    course, settings = course_and_settings
    source = course.textbook_dir()
    (source / "_build").mkdir()
    (source / "_build" / "junk.html").write_text("x")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / "01-welcome-checkpoint.ipynb").write_text("{}")
    (source / ".secret").write_text("x")

    first = sync_content_repo(course, settings)
    repo = local_repo_path(settings, course.id)
    assert first and git(repo, "rev-parse", "main") == first
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    files = git(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert files == ["01-welcome.ipynb", "02-lists.ipynb", "03-plotting.ipynb"]
    assert sync_content_repo(course, settings) is None  # nothing changed: no empty commits

    (source / "04-new.md").write_text("# 4. New\n")
    second = sync_content_repo(course, settings)
    assert second and git(repo, "rev-parse", "main^") == first
    assert "04-new.md" in git(repo, "ls-tree", "-r", "--name-only", "main")


def test_notebooks_are_committed_as_jupyter_writes_them(course_and_settings):
    course, settings = course_and_settings
    nb_file = course.textbook_dir() / "02-lists.ipynb"
    nb_file.write_text(json.dumps(json.loads(nb_file.read_text()), indent=4))  # an editor's layout
    sync_content_repo(course, settings)
    committed = git(local_repo_path(settings, course.id), "show", "main:02-lists.ipynb")
    assert committed + "\n" == nbformat.writes(nbformat.read(nb_file, as_version=4)) + "\n"


def test_a_broken_notebook_is_reported_with_its_file(course_and_settings):
    course, settings = course_and_settings
    (course.textbook_dir() / "02-lists.ipynb").write_text("{not json")
    with pytest.raises(ConfigError, match="02-lists.ipynb.*not a readable notebook"):
        sync_content_repo(course, settings)


def test_nbgitpuller_clones_the_local_repository_and_keeps_student_edits(course_and_settings, tmp_path):
    course, settings = course_and_settings
    sync_content_repo(course, settings)
    url = content_repo_url(course, settings)
    assert url.startswith("file://")
    clone = tmp_path / "home" / "demo-101-textbook"
    pull(url, clone)
    assert (clone / "01-welcome.ipynb").is_file()

    # The student edits a cell (saved by Jupyter, i.e. by nbformat) and deletes another page.
    mine = clone / "01-welcome.ipynb"
    nb = nbformat.read(mine, as_version=4)
    nb.cells[1].source = 'greeting = "my own greeting"\nprint(greeting)'
    nbformat.write(nb, mine)
    (clone / "02-lists.ipynb").unlink()

    # The instructor adds a cell at the end of that page and a new page.
    source = course.textbook_dir()
    upstream = nbformat.read(source / "01-welcome.ipynb", as_version=4)
    upstream.cells.append(nbformat.v4.new_markdown_cell("## Added by the instructor"))
    nbformat.write(upstream, source / "01-welcome.ipynb")
    (source / "04-dicts.md").write_text("# 4. Dictionaries\n")
    assert sync_content_repo(course, settings)

    pull(url, clone)
    merged = nbformat.read(mine, as_version=4)
    sources = [c.source for c in merged.cells]
    assert 'greeting = "my own greeting"\nprint(greeting)' in sources  # the edit is kept
    assert "## Added by the instructor" in sources  # and the update arrived
    assert (clone / "04-dicts.md").is_file()
    assert (clone / "02-lists.ipynb").is_file()  # a deleted page comes back
