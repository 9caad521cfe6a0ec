"""`coursehub autograde ASSIGNMENT --course-dir DIR [--workers N]`: nbgrader autograde, in parallel
and in a sandbox, into the course's own gradebook."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment id (a folder under source/ and submitted/<student>/)")
    p.add_argument("--course-dir", type=Path, default=Path("."), help="the nbgrader course directory (default: .)")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: number of cores)")
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument("--force", action="store_true", help="regrade submissions that were already autograded")
    p.add_argument("--settings", type=Path, help="platform settings file (sandbox limits)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--accept-environment-mismatch", action="store_true",
                   help="grade submissions made in another environment or kernel than the course's "
                        "(default: they get the status environment-mismatch and no grade)")


def run(args: argparse.Namespace) -> int:
    from ..sandbox import kernel_template

    # the first worker's kernel template does its imports now, beside this process's own below
    kernel_template.prestart()
    try:
        return _run(args)
    finally:
        kernel_template.release_prestarted(discard=True)  # not taken (an error, or nothing to grade)
        kernel_template.reap_prestarted()


def _run(args: argparse.Namespace) -> int:
    from coursehub.startup import collector_paused

    with collector_paused():  # before the workers fork from this process
        _import_nbgrader_without_server_extensions()
        from tqdm import tqdm

        from coursehub.platform.errors import ConfigError
        from coursehub.platform.settings import load_settings

        from ..sandbox.limits import KernelLimits
        from . import steps
        from .course import CourseError, NbgraderCourse
        from .gradebook import GradebookWriter
        from .pool import GraderPool, release_free_memory

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.settings)
        course = NbgraderCourse(args.course_dir)
        steps.pipeline(course.config)  # the course's nbgrader preprocessor lists: refused before anything runs
        course.ensure_assignment(args.assignment)
        index = course.source_index(args.assignment)
    except (ConfigError, CourseError, steps.PipelineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from ..sandbox.bwrap import check

    problem = check()
    if problem:
        print(f"error: the grading sandbox cannot run: {problem}", file=sys.stderr)
        return 1
    from ..sandbox.isolation import describe

    limits = KernelLimits.from_settings(settings.grading.sandbox)
    print(describe(limits)[0], file=sys.stderr)
    workers = args.workers or settings.grading.workers or os.cpu_count() or 1
    students = args.student or course.students(args.assignment)
    todo = [s for s in students if args.force or not _already_graded(course, s, args.assignment)]
    skipped = len(students) - len(todo)
    if not todo:
        print(f"nothing to grade for {args.assignment} ({skipped} already autograded; use --force to regrade)")
        return 0
    from coursehub.grading.envparity import MISMATCH, RECORD_FILE

    from .environment import EnvironmentNotBuilt, ParityCheck, course_id_of, course_runtime
    from .grader import SubmissionJob, SubmissionResult

    try:  # the course's own environment: grading with other packages would give wrong grades
        runtime = course_runtime(settings, course_id_of(course.config))
    except (EnvironmentNotBuilt, ConfigError) as e:
        print(f"error: not grading {args.assignment}: {e}", file=sys.stderr)
        return 1
    if runtime.python is not None or runtime.runtime is not None:
        from ..sandbox import kernel_template

        kernel_template.release_prestarted(discard=True)  # the course's own Python starts each zygote
    parity = ParityCheck.for_course(settings, course_id_of(course.config), index, args.accept_environment_mismatch)
    checks = {s: parity.check(course.submission_dir(s, args.assignment), s, args.assignment) for s in todo}
    refused = [SubmissionResult(s, args.assignment, MISMATCH, error=p.reason) for s, p in checks.items() if not p.graded]
    graded = [s for s in todo if checks[s].graded]
    jobs: dict[str, SubmissionJob] = {}

    def each_job() -> Iterator[SubmissionJob]:
        """Each submission read when the pool takes it (in the pool's feeder thread): the first
        sandbox does not wait until every submission of a large batch has been read."""
        for student in graded:
            jobs[student] = _job(course, student, args.assignment, index)
            yield jobs[student]

    t0 = time.monotonic()
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    # The workers fork first and start their sandboxes (a Python importing ipykernel in each) while
    # this process opens the gradebook and reads the submissions.
    with (GraderPool(index, course.config, limits, min(workers, len(graded)), runtime=runtime, total=len(graded))
          if graded else contextlib.nullcontext()) as pool, \
            GradebookWriter(course.db_url, course.course_id, course.root, course.config) as writer:
        bar = tqdm(total=len(todo), unit="sub", desc=f"autograde {args.assignment}", disable=args.no_progress)
        for result in itertools.chain(refused, pool.grade(each_job()) if graded else ()):
            statuses[result.status] += 1
            if result.status == MISMATCH:
                problems.append(f"{result.student}: {result.error}")
            elif result.status == "failed":
                problems.append(f"{result.student}: grader error: {result.error}")
            elif result.status == "invalid":
                problems.append(f"{result.student}: invalid submission, not graded: {result.error}")
            else:
                try:
                    files = dict(jobs[result.student].files)
                    ts_file = course.submission_dir(result.student, args.assignment) / "timestamp.txt"
                    if ts_file.is_file():
                        files["timestamp.txt"] = ts_file.read_bytes()
                    files[RECORD_FILE] = checks[result.student].graded_record()  # the environment graded in
                    writer.apply(result, course.timestamp(result.student, args.assignment), files)
                    release_free_memory()
                except Exception as e:  # noqa: BLE001 - one submission's problem must not stop the run
                    writer.gb.db.rollback()
                    statuses[result.status] -= 1
                    statuses["failed"] += 1
                    problems.append(f"{result.student}: not written to the gradebook: {type(e).__name__}: {e}")
                if result.status != "graded":
                    problems.append(f"{result.student}: {result.status}: " + "; ".join(result.reasons))
            bar.update()
        bar.close()
    elapsed = time.monotonic() - t0
    print(f"\n{args.assignment}: {len(todo)} submission(s) in {elapsed:.1f}s with {min(workers, len(jobs))} worker(s)"
          + (f", {skipped} skipped (already autograded)" if skipped else ""))
    labels = {"graded": "graded", "incomplete": "incomplete (kernel stopped early)", "timeout": "timed out",
              "output_limit": "output limit", "invalid": "invalid (unreadable, not graded)",
              MISMATCH: "environment mismatch (not graded)", "failed": "failed (grader error, not written)"}
    for status in ("graded", "incomplete", "timeout", "output_limit", "invalid", MISMATCH, "failed"):
        if statuses[status]:
            print(f"  {labels[status]:<36} {statuses[status]}")
    unrecorded = sum(1 for p in checks.values() if p.outcome == "unrecorded")
    if unrecorded:
        print(f"  ({unrecorded} submission(s) recorded no environment: an older client or nbgrader's own exchange; "
              "graded without the parity check)")
    for p in problems:
        print(f"  - {p}")
    return 1 if statuses["failed"] or statuses["invalid"] or statuses[MISMATCH] else 0


def _import_nbgrader_without_server_extensions() -> None:
    """Make `nbgrader` importable without running its package __init__, which imports nbgrader's
    Jupyter server extensions (jupyter_server, the exchange, requests, ...): grading uses none of
    them, and they cost ~0.08 s of start-up and ~6 MiB in every grading process. Its submodules
    (api, preprocessors, utils, ...) import as usual; `nbgrader.__version__` is set. Nothing
    happens if nbgrader is already imported (e.g. by a test or an embedding process); any other
    name of the package runs its real __init__ when first asked for (`coursehub.deferred`)."""
    from coursehub.deferred import package_without_init

    if not package_without_init("nbgrader", {"_version": ("__version__",)}):
        return
    _import_nbgrader_utils_without_setuptools()
    _import_nbgrader_auth_without_requests()
    _import_nbconvert_without_exporters()


def _import_nbgrader_utils_without_setuptools() -> None:
    """nbgrader.utils imports three setuptools.archive_util functions (to unpack `zip_collect`
    archives; grading never calls them), and importing setuptools (and pkg_resources, which scans
    every installed distribution) cost ~0.1 s of start-up and memory in every grading process.
    They load on first call instead; a later `import setuptools` gets the real one."""
    from coursehub.deferred import import_without

    import_without("nbgrader.utils",
                   {"setuptools.archive_util": ("unpack_archive", "unpack_tarfile", "unpack_zipfile")})


def _import_nbgrader_auth_without_requests() -> None:
    """nbgrader.api imports nbgrader.auth, whose JupyterHub authenticator imports requests (with
    urllib3, idna and charset_normalizer) to ask a hub for a user's courses; grading never asks.
    `requests.request` loads the real requests on first call; a later `import requests` gets it."""
    from coursehub.deferred import import_without

    import_without("nbgrader.auth", {"requests": ("request",)})


def _import_nbconvert_without_exporters() -> None:
    """nbconvert's package __init__ imports every exporter, and with them its filters (mistune,
    bleach, BeautifulSoup) and template machinery: ~0.4-0.6 s of the autograder's start-up CPU
    (a third of it) and memory in every grading process. Grading uses nbconvert's preprocessors and
    two of its exporter classes (NotebookExporter; ResourcesDict, which nbgrader's preprocessors
    import). Those packages are made without their __init__ (`coursehub.deferred`); any other name
    of theirs runs the real __init__ when first asked for."""
    from coursehub.deferred import package_without_init

    if package_without_init("nbconvert", {"_version": ("__version__", "version_info")}):
        package_without_init("nbconvert.exporters", {"exporter": ("Exporter", "ResourcesDict", "FilenameExtension"),
                                                     "notebook": ("NotebookExporter",)})


def _already_graded(course, student: str, assignment: str) -> bool:
    try:
        return course.already_graded(student, assignment)
    except Exception:  # noqa: BLE001 - e.g. an unreadable timestamp.txt: grade it, the job will say why
        return False


def _job(course, student: str, assignment: str, index):
    """The submission's job; a submission that cannot even be read becomes an "invalid" job."""
    from .grader import SubmissionJob

    try:
        return course.job(student, assignment, index)
    except Exception as e:  # noqa: BLE001 - one bad submission must not stop the run
        return SubmissionJob(student=student, assignment=assignment, notebooks={},
                             invalid=f"the submission cannot be read ({type(e).__name__}: {e})")
