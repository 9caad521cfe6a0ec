"""Build a course's textbook to HTML with Jupyter Book 1 (Sphinx), launch links on every page.

Steps: commit the source to the content repository (so the launch links have something to clone),
copy the source into a work folder, add `_config.yml`/`_toc.yml` (generated when the course has
none; ours merged into theirs when it has), run Jupyter Book (notebooks executed through
jupyter-cache, so unchanged notebooks are not run again), add a local MathJax, then swap the new
HTML in. A fingerprint of the inputs tells whether a built book is stale.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import yaml

from ..courses import Course
from ..errors import ConfigError, Problem
from ..settings import Settings
from .links import PAGE_SUFFIXES, launch_url
from .repo import source_files, stage_textbook, sync_content_repo

#: Bump when the build's output changes for the same inputs (invalidates every built book).
BUILD_FORMAT = "1"
MARKER = ".coursehub-book.json"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full"
_BOOK_FILES = {"_config.yml", "_toc.yml"}
_ROOT_NAMES = ("index", "intro", "README")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

Progress = Callable[[str], None]
#: Jupyter Book processes running now (stopped with their kernels if the service stops).
_running: set[subprocess.Popen] = set()


class BuildFailed(RuntimeError):
    """Jupyter Book did not produce the book; the message ends with the tail of its log."""


@dataclass
class BuildResult:
    course_id: str
    html_dir: Path
    built: bool  # False: the book was up to date
    pages: list[str] = field(default_factory=list)
    commit: str | None = None  # new content-repository commit, if the source changed


def book_dir(settings: Settings, course_id: str) -> Path:
    """Where the service serves a course's book from."""
    return settings.state_dir / "textbooks" / course_id


def work_dir(settings: Settings, course_id: str) -> Path:
    """Build folder kept between builds (its execution cache makes rebuilds quick)."""
    return settings.state_dir / "textbook-build" / course_id


def pages_of(folder: Path) -> list[str]:
    """The book's pages in reading order: the root page first (index/intro/README), then by file name."""
    pages = [rel.as_posix() for rel in source_files(folder)
             if rel.suffix in PAGE_SUFFIXES and rel.name not in _BOOK_FILES]
    roots = [p for p in pages if "/" not in p and Path(p).stem in _ROOT_NAMES]
    return roots[:1] + [p for p in pages if p not in roots[:1]]


def docname(page: str) -> str:
    return page.rsplit(".", 1)[0]


def generated_toc(pages: list[str]) -> dict:
    toc: dict = {"format": "jb-book", "root": docname(pages[0])}
    if len(pages) > 1:  # a one-page book has no chapters (an empty list is an error)
        toc["chapters"] = [{"file": docname(p)} for p in pages[1:]]
    return toc


def book_config(course: Course, user: dict, launch_urls: dict[str, str], cache_dir: Path) -> dict:
    """The course's `_config.yml` (or an empty one) with what coursehub needs forced in."""
    config = dict(user)
    config.setdefault("title", course.title)
    config.setdefault("author", "")
    config.setdefault("copyright", "")
    config["only_build_toc_files"] = True
    execute = {"execute_notebooks": "cache", "timeout": 120, "raise_on_error": True,
               "show_tb": True,
               **dict(config.get("execute") or {})}
    execute["cache"] = str(cache_dir)
    config["execute"] = execute
    html = {"use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False,
            **dict(config.get("html") or {})}
    config["html"] = html
    sphinx = dict(config.get("sphinx") or {})
    extensions = list(sphinx.get("extra_extensions") or [])
    if "coursehub.platform.textbook.sphinx_launch" not in extensions:
        extensions.append("coursehub.platform.textbook.sphinx_launch")
    sphinx["extra_extensions"] = extensions
    sphinx["config"] = {
        **dict(sphinx.get("config") or {}),
        "coursehub_launch_urls": launch_urls,
        # MathJax from the book itself (copied in after the build), not from a CDN.
        "mathjax_path": f"mathjax/MathJax.js?config={MATHJAX_CONFIG}",
        "mathjax3_config": None,
        "mathjax2_config": {"tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area",
                                        "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
                            # jupyter-server-mathjax ships the STIX-Web fonts only (as Jupyter itself
                            # configures MathJax): asking for the default TeX fonts 404s and MathJax
                            # covers the page with "File failed to load".
                            "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                                         "imageFont": None}},
        "myst_update_mathjax": False,
    }
    config["sphinx"] = sphinx
    return config


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError as e:
        raise ConfigError([Problem(path, "", f"not valid YAML: {e}")]) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError([Problem(path, "", "expected a mapping")])
    return data or {}


def _textbook_folder(course: Course) -> Path:
    folder = course.textbook_dir()
    if course.textbook is None or folder is None or not folder.is_dir():
        raise ConfigError([Problem(course.folder / "course.yaml" if course.folder else None,
                                   "textbook", f"course {course.id!r} has no textbook folder")])
    return folder


def plan(course: Course, settings: Settings) -> tuple[list[str], dict, dict, str]:
    """(pages, _config.yml, _toc.yml, fingerprint) for the course's book as it is now."""
    folder = _textbook_folder(course)
    pages = pages_of(folder)
    if not pages:
        raise ConfigError([Problem(folder, "", "the textbook has no pages (.ipynb or .md files)")])
    urls = {docname(p): launch_url(course, p, settings) for p in pages}
    toc = _read_yaml(folder / "_toc.yml") or generated_toc(pages)
    cache = work_dir(settings, course.id) / "cache"
    config = book_config(course, _read_yaml(folder / "_config.yml"), urls, cache)
    digest = hashlib.sha256()
    digest.update(json.dumps([BUILD_FORMAT, version("jupyter-book"), config, toc], sort_keys=True).encode())
    for rel in source_files(folder):
        digest.update(rel.as_posix().encode() + b"\0" + (folder / rel).read_bytes() + b"\0")
    return pages, config, toc, digest.hexdigest()


def built_fingerprint(out: Path) -> str | None:
    try:
        return json.loads((out / MARKER).read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def is_stale(course: Course, settings: Settings, out: Path | None = None) -> bool:
    out = out or book_dir(settings, course.id)
    return built_fingerprint(out) != plan(course, settings)[3]


@contextlib.contextmanager
def build_lock(settings: Settings, course_id: str) -> Iterator[None]:
    """One build of a course at a time (the CLI and the service may both try)."""
    folder = work_dir(settings, course_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{course_id}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_textbook(course: Course, settings: Settings, out: Path | None = None, *, force: bool = False,
                   progress: Progress | None = None) -> BuildResult:
    """Build (or keep, if up to date) the HTML book of `course` in `out` (default: the served folder)."""
    say = progress or (lambda _line: None)
    out = (out or book_dir(settings, course.id)).resolve()
    with build_lock(settings, course.id):
        commit = sync_content_repo(course, settings)
        if commit:
            say(f"content repository updated: {commit[:12]}")
        pages, config, toc, fingerprint = plan(course, settings)
        if not force and built_fingerprint(out) == fingerprint:
            say(f"{course.id}: the textbook is up to date ({out})")
            return BuildResult(course.id, out, False, pages, commit)
        if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
            raise ConfigError([Problem(out, "", "refusing to replace a folder that is not a coursehub "
                                       "textbook build; choose an empty or new --out folder")])
        work = work_dir(settings, course.id)
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        stage_textbook(_textbook_folder(course), src)
        (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        say(f"{course.id}: building {len(pages)} page(s) with Jupyter Book (notebooks are executed) ...")
        html = run_jupyter_book(src, work / "out", say)
        add_mathjax(html)
        (html / MARKER).write_text(json.dumps({
            "course": course.id, "fingerprint": fingerprint, "pages": pages,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }, indent=2))
        replace_folder(html, out)
        say(f"{course.id}: textbook built: {out}/index.html")
        return BuildResult(course.id, out, True, pages, commit)


def run_jupyter_book(src: Path, output: Path, say: Progress) -> Path:
    """Run `jupyter-book build` in a child process (Sphinx keeps global state), streaming its log."""
    html = output / "_build" / "html"
    shutil.rmtree(html, ignore_errors=True)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(src), "--path-output", str(output), "--builder", "html"]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # plots go inline
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1")
    tail: list[str] = []
    problems: list[str] = []  # warnings and errors, with the failing cell's traceback (show_tb)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=src,
                          env=env, start_new_session=True) as proc:
        _running.add(proc)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = _ANSI.sub("", raw.rstrip())
                if not line:
                    continue
                tail = (tail + [line])[-15:]
                if any(k in line for k in ("WARNING", "ERROR", "Error", "Traceback")) and "[IPKernelApp]" not in line:
                    problems = (problems + [line])[-20:]
                if _interesting(line):
                    say("  " + line)
            code = proc.wait()
        finally:
            _running.discard(proc)
    if code != 0 or not (html / "index.html").is_file():
        raise BuildFailed(f"Jupyter Book failed (exit {code}).\nProblems it reported:\n" + "\n".join(problems)
                          + "\nLast lines of its log:\n" + "\n".join(tail))
    return html


def stop_running_builds() -> None:
    """Stop Jupyter Book runs of this process (and the kernels they started): used at shutdown."""
    for proc in list(_running):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _interesting(line: str) -> bool:
    """Progress worth showing: pages read and written, executions, warnings and errors."""
    if "[IPKernelApp]" in line:
        return False
    return any(k in line for k in ("reading sources", "writing output", "Executing", "Executed",
                                   "WARNING", "ERROR", "Error", "build succeeded"))


def add_mathjax(html: Path) -> None:
    """Copy MathJax (from the jupyter-server-mathjax package) into the book: math renders offline."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = html / "_static" / "mathjax"
    try:
        shutil.copytree(source, target, copy_function=os.link, dirs_exist_ok=True)
    except OSError:  # another file system: hard links are not possible
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def replace_folder(new: Path, dest: Path) -> None:
    """Swap `dest` for `new` with two renames, so readers never see a half-written book."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = dest.with_name(f".{dest.name}.new")
    old = dest.with_name(f".{dest.name}.old")
    for leftover in (staged, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.move(str(new), staged)
    if dest.exists():
        dest.rename(old)
    staged.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
