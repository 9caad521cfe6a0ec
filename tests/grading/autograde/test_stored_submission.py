"""The queue worker grades the submission the job names, from the grading service's store, checksum
verified; not the submitted/ folder a collect wrote (which anyone with the course folder can edit)."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from support import samples
from support.exchange import COURSE, make_courses

from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.autograde.grader import SubmissionResult
from coursehub.grading.queue import JobQueue
from coursehub.grading.queue.models import DEAD, DONE
from coursehub.grading.queue.submission import StoreReader
from coursehub.grading.queue.worker import QueueWorker


class RecordingExecutor:
    """Records the job it is given; grades nothing (an "invalid" result writes no grades)."""

    def __init__(self) -> None:
        self.jobs = []

    def grade(self, job, index, config):
        self.jobs.append(job)
        return SubmissionResult(job.student, job.assignment, "invalid", error="recorded only")

    def close(self) -> None:
        pass


@pytest.fixture
def exchange(tmp_path, demo_course):
    """A grading database and store holding one stored submission of `alice` (correct answers),
    and a course folder whose submitted/ copy of it was then edited (wrong answers)."""
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import Caller, ExchangeCore
    from coursehub.grading.storage import BlobStore
    from coursehub.platform.courses import load_catalog

    course = tmp_path / "course"
    shutil.copytree(demo_course, course)
    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'grading.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    core = ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits())
    released = samples.released(course)
    core.release(Caller("inst", {COURSE: frozenset({"instructor"})}), COURSE, "ps1",
                 pack({f"{n}.ipynb": nbformat.writes(nb).encode() for n, nb in released.items()}), force=False)
    good = samples.correct(samples.released(course))
    sub = core.submit(Caller("alice", {COURSE: frozenset({"student"})}), COURSE, "ps1",
                      pack({**{f"{n}.ipynb": nbformat.writes(nb).encode() for n, nb in good.items()},
                            "data/notes.txt": b"mine"}))
    samples.write_submission(course, "alice", samples.wrong(samples.released(course)))  # edited after collect
    queue = JobQueue(url, max_attempts=3)
    yield core, queue, course, sub
    queue.engine.dispose()
    engine.dispose()


def run(queue, core, course, sub, **payload):
    job_id = queue.enqueue(COURSE, "ps1", payload.pop("student", "alice"),
                           {"course_dir": str(course), "submission_id": sub["id"], "sha256": sub["sha256"], **payload})
    executor = RecordingExecutor()
    worker = QueueWorker(queue, executor, store=StoreReader(core.store.root))  # as the worker's main() does
    assert worker.run_once()
    return queue.get(job_id), executor.jobs


def test_the_stored_submission_is_graded_not_the_edited_folder(exchange):
    core, queue, course, sub = exchange
    job, graded = run(queue, core, course, sub)
    assert job.status == DONE
    [got] = graded
    stored = samples.correct(samples.released(course))
    assert set(got.notebooks) == {"part1", "part2"}
    for name, text in got.notebooks.items():
        assert nbformat.reads(text, 4).cells == stored[name].cells
    edited = (course / "submitted" / "alice" / "ps1" / "part1.ipynb").read_text()
    assert got.notebooks["part1"] != edited
    assert got.files["data/notes.txt"] == b"mine"


def test_a_blob_that_fails_its_checksum_is_refused_not_graded(exchange):
    core, queue, course, sub = exchange
    blob = core.store.path(sub["blob_path"])
    blob.write_bytes(blob.read_bytes().replace(b"return", b"retUrn", 1))  # tampered in the store
    job, graded = run(queue, core, course, sub)
    assert graded == []
    assert job.status == DEAD and job.attempts == 1  # never retried: retrying cannot make it match
    assert "does not match its checksum" in job.last_error and "refused, not graded" in job.last_error


@pytest.mark.parametrize(("payload", "why"), [
    ({"sha256": "0" * 64}, "checksum does not match the stored submission's"),
    ({"student": "mallory"}, "belongs to abc101/ps1/alice, not to abc101/ps1/mallory"),
    ({"submission_id": 999}, "does not exist"),
    ({"submission_id": "1"}, "needs an integer submission_id"),
])
def test_a_job_that_names_the_wrong_submission_is_refused(exchange, payload, why):
    core, queue, course, sub = exchange
    job, graded = run(queue, core, course, sub, **payload)
    assert graded == [] and job.status == DEAD and why in job.last_error


def test_a_refused_autograde_config_is_a_dead_letter_at_once(exchange):
    core, queue, course, sub = exchange
    with (course / "nbgrader_config.py").open("a") as f:
        f.write("\nc.Autograde.sanitize_preprocessors = ['coursehub_nope.Missing']\n")
    job, graded = run(queue, core, course, sub)
    assert graded == [] and job.status == DEAD and "cannot be imported" in job.last_error


def test_the_worker_reads_the_store_without_writing_to_it(tmp_path):
    """Its mount is read only on Kubernetes: opening the store creates nothing."""
    StoreReader(tmp_path / "exchange")
    assert not (tmp_path / "exchange").exists()
