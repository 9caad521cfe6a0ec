"""Faults: a worker SIGKILLed mid-job (the job completes once after a restart), and a submission
that makes the grader fail every time (dead letter, the others are graded)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
from support import samples

from coursehub.grading.autograde.executors import LocalExecutor
from coursehub.grading.queue import JobQueue
from coursehub.grading.queue.models import DEAD, DONE, LEASED
from coursehub.grading.queue.worker import QueueWorker
from coursehub.grading.sandbox.limits import KernelLimits


def _slow_correct(nbs):
    nbs = samples.correct(nbs)
    samples.cell(nbs, "squares").source = "import time\ntime.sleep(4)\n" + samples.SOLUTIONS["squares"]
    return nbs


def _sandboxes(slot_ids):
    names = [f"coursehub-sandbox-{i}-" for i in slot_ids]
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if any(n in cmd for n in names):
            found.append(p)
    return found


def _worker(db_url, settings, slot, *extra):
    log = open(settings.parent / f"worker-{slot}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "coursehub.grading.queue.worker", "--db-url", db_url, "--settings", str(settings),
         "--slot", str(slot), "--lease-seconds", "3", "--poll-seconds", "0.2", *extra],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=log, text=True)


def test_sigkilled_worker_job_completes_once_after_restart(course_copy, tmp_path):
    course = course_copy()
    samples.write_submission(course, "alice", _slow_correct(samples.released(course)))
    settings = tmp_path / "settings.yaml"
    (tmp_path / "courses").mkdir()  # not the catalog's demo-101 (its environment is not built here)
    settings.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {tmp_path / 'courses'}\n"
                        "grading:\n  max_attempts: 3\n")
    db = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    q = JobQueue(db)
    q.create_tables()
    jid = q.enqueue("demo-101", "ps1", "alice", {"course_dir": str(course)})

    first = _worker(db, settings, 50)
    try:
        deadline = time.monotonic() + 120
        while q.get(jid).status != LEASED:
            assert time.monotonic() < deadline, "the first worker never leased the job"
            assert first.poll() is None, (tmp_path / "worker-50.log").read_text()
            time.sleep(0.2)
        time.sleep(1.5)  # mid-job: the squares cell sleeps 4 s
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert q.get(jid).status == LEASED  # nobody finished it
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()

    second = _worker(db, settings, 51, "--exit-when-idle", "4")
    try:
        second.wait(180)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    job = q.get(jid)
    assert job.status == DONE, (job.status, job.last_error, (tmp_path / "worker-51.log").read_text()[-3000:])
    assert job.attempts == 2
    events = [e for _, e in q.events(jid)]
    assert events.count("applied") == 1 and "lease-expired" in events
    snap = samples.gradebook_snapshot(f"sqlite:///{course / 'gradebook.db'}", "demo-101")
    assert snap[("alice", "part1", "test-squares", "grade")][0] == 2.0
    assert snap[("alice", "part2", "test-warmest", "grade")][0] == 2.0

    # the killed worker's sandboxes go away on their own (their zygote sees its pipe close)
    deadline = time.monotonic() + 20
    while _sandboxes([100, 101, 102, 103]):
        assert time.monotonic() < deadline, "sandboxes of the killed worker are still running"
        time.sleep(0.5)
    for leftover in glob.glob("/tmp/coursehub-sandbox-10[01]-*"):  # SIGKILL left the killed worker's folders
        shutil.rmtree(leftover, ignore_errors=True)
    q.engine.dispose()


def test_grader_crash_every_time_goes_to_dead_letters_without_blocking(course_copy, tmp_path, monkeypatch):
    from coursehub.grading.autograde.grader import Grader

    course = course_copy()
    for s in ("crasher", "broken", "good1", "good2"):
        samples.write_submission(course, s, samples.correct(samples.released(course)))
    (course / "submitted" / "broken" / "ps1" / "part1.ipynb").write_text("{ this is not a notebook")
    real_write = Grader._write_files

    def write_files(slot, job):  # a grader fault (not the student's) on every attempt for one job
        if job.student == "crasher":
            raise OSError("the workspace disk failed")
        return real_write(slot, job)

    monkeypatch.setattr(Grader, "_write_files", staticmethod(write_files))
    q = JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite'}", max_attempts=2, backoff_base=0.2)
    q.create_tables()
    ids = {s: q.enqueue("demo-101", "ps1", s, {"course_dir": str(course)}) for s in ("crasher", "broken", "good1", "good2")}
    worker = QueueWorker(q, LocalExecutor(KernelLimits(cell_timeout_seconds=20), slot=56), lease_seconds=30,
                         poll_seconds=0.1)
    try:
        worker.run(max_idle=2)
    finally:
        worker.close()
    assert q.get(ids["crasher"]).status == DEAD
    assert [j.id for j in q.dead_letters("demo-101")] == [ids["crasher"]]
    assert "the workspace disk failed" in q.dead_letters()[0].last_error
    # a file that is not a notebook is the student's: one attempt, a clear status, no grades
    broken = q.get(ids["broken"])
    assert broken.status == DONE and broken.attempts == 1
    assert broken.result["status"] == "invalid" and "part1.ipynb is not a gradable notebook" in broken.result["error"]
    assert q.get(ids["good1"]).status == DONE and q.get(ids["good2"]).status == DONE
    snap = samples.gradebook_snapshot(f"sqlite:///{course / 'gradebook.db'}", "demo-101")
    assert snap[("good2", "part1", "test-mean", "grade")][0] == 3.0
    assert not any(k[0] in ("broken", "crasher") for k in snap)
    q.engine.dispose()
