"""End to end in the real sandbox: a collected submission is graded from the grading service's
stored blob (an edit to submitted/ after collect changes nothing), with the service's timestamp,
and through the course's own nbgrader pipeline (a step the course's nbgrader_config.py adds runs)."""

from __future__ import annotations

import nbformat
from support import samples
from support.exchange import COURSE, make_courses

from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.autograde.executors import LocalExecutor
from coursehub.grading.queue import JobQueue
from coursehub.grading.queue.models import DONE
from coursehub.grading.queue.worker import QueueWorker
from coursehub.grading.sandbox.limits import KernelLimits

STEPS = ["nbgrader.preprocessors.Execute", "nbconvert.preprocessors.TagRemovePreprocessor",
         "nbgrader.preprocessors.IgnorePattern", "nbconvert.preprocessors.ClearMetadataPreprocessor",
         "nbgrader.preprocessors.LimitOutput", "nbgrader.preprocessors.SaveAutoGrades",
         "nbgrader.preprocessors.AssignLatePenalties", "nbgrader.preprocessors.CheckCellMetadata"]


def test_graded_from_the_store_through_the_courses_pipeline(course_copy, tmp_path):
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import Caller, ExchangeCore
    from coursehub.grading.storage import BlobStore
    from coursehub.platform.courses import load_catalog

    course = course_copy()
    with (course / "nbgrader_config.py").open("a") as f:
        f.write(f"\nc.Autograde.autograde_preprocessors = {STEPS!r}\n"
                "c.TagRemovePreprocessor.enabled = True\nc.TagRemovePreprocessor.remove_cell_tags = {'scratch'}\n")
    url = f"sqlite:///{tmp_path / 'grading.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    catalog = load_catalog(make_courses(tmp_path / "courses"))
    core = ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits())
    nbs = lambda d: {f"{n}.ipynb": nbformat.writes(nb).encode() for n, nb in d.items()}  # noqa: E731
    core.release(Caller("inst", {COURSE: frozenset({"instructor"})}), COURSE, "ps1",
                 pack(nbs(samples.released(course))), force=False)
    good = samples.correct(samples.released(course))
    good["part1"].cells.append(nbformat.v4.new_code_cell("print('scratch work')", metadata={"tags": ["scratch"]}))
    sub = core.submit(Caller("alice", {COURSE: frozenset({"student"})}), COURSE, "ps1", pack(nbs(good)))
    # the collect wrote submitted/alice/ps1; then someone replaced the answers there
    samples.write_submission(course, "alice", samples.wrong(samples.released(course)),
                             timestamp="2030-01-01 00:00:00.000000 UTC")

    queue = JobQueue(url, max_attempts=1)
    job_id = queue.enqueue(COURSE, "ps1", "alice", {"course_dir": str(course), "submission_id": sub["id"],
                                                    "sha256": sub["sha256"]})
    worker = QueueWorker(queue, LocalExecutor(KernelLimits(cell_timeout_seconds=20), slot=76), store=core.store)
    try:
        assert worker.run_once()
    finally:
        worker.close()
    job = queue.get(job_id)
    assert job.status == DONE, job.last_error

    snap = samples.gradebook_snapshot(f"sqlite:///{course / 'gradebook.db'}", "demo-101")
    assert sum(v[0] or 0 for k, v in snap.items() if k[0] == "alice" and k[3] == "grade") == 7.0  # the stored answers
    graded = course / "autograded" / "alice" / "ps1"
    assert (graded / "timestamp.txt").read_text() == sub["timestamp"]  # the service's clock, not the edited file
    part1 = nbformat.read(graded / "part1.ipynb", as_version=4)
    assert not any("scratch work" in c.source for c in part1.cells)  # the course's added step ran
    queue.engine.dispose()
    engine.dispose()
