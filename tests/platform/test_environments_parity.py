"""Environment parity (issue 15): a submission records the environment and kernel it was made in, the
service keeps them (never what the student's files claim), and the autograder refuses a mismatch
with a status of its own unless the instructor accepts it."""

from __future__ import annotations

import io
import json
import tarfile
from types import SimpleNamespace

import nbformat
import pytest
from support.exchange import COURSE, MEMBERS, CoursehubBackend, make_courses, make_notebook, prepare_release
from support.fakehub import FakeHub
from support.grading import running_service

from coursehub.grading import envparity
from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.autograde.environment import ParityCheck, expected_environment, source_kernels
from coursehub.grading.autograde.sources import SourceIndex
from coursehub.grading.storage import BlobStore
from coursehub.platform import environments as envs
from coursehub.platform.courses import load_catalog

LOCK_A, LOCK_B = "a" * 64, "b" * 64


def _nb(kernel: str | None) -> bytes:
    nb = nbformat.v4.new_notebook()
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    return nbformat.writes(nb).encode()


# -- what the student's server reports -----------------------------------------------------------------
def test_running_environment_reads_the_build_marker_then_the_image_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(envs.ENVIRONMENT_VAR, raising=False)
    assert envs.running_environment(str(tmp_path)) == "default"  # coursehub's own: no marker
    (tmp_path / envs.MARKER_FILE).write_text(json.dumps({"course": "c", "lock_sha256": LOCK_A}))
    assert envs.running_environment(str(tmp_path)) == LOCK_A
    monkeypatch.setenv(envs.ENVIRONMENT_VAR, LOCK_B)  # a course image says it in its environment
    assert envs.running_environment(str(tmp_path)) == LOCK_B
    monkeypatch.setenv(envs.ENVIRONMENT_VAR, "not-a-hash")
    (tmp_path / envs.MARKER_FILE).write_text("{broken")
    assert envs.running_environment(str(tmp_path)) == "default"


def test_the_image_build_writes_the_same_marker(tmp_path):
    """The line the image's postBuild runs, run with an environment's python on PATH."""
    import os
    import subprocess
    import sys

    from coursehub.platform.environments_image import _marker_command

    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    cmd = _marker_command(envs.Spec("c1", tmp_path, "3.11", ()), envs.LockInfo(tmp_path / "lock", LOCK_A, "3.11"))
    subprocess.run(["sh", "-c", cmd], check=True, env={**os.environ, "PATH": f"{prefix / 'bin'}:{os.environ['PATH']}"})
    assert envs.running_environment(str(prefix)) == LOCK_A


def test_the_course_side_is_its_current_lock(tmp_path):
    course = tmp_path / "courses" / "c1"
    course.mkdir(parents=True)
    (course / "course.yaml").write_text("id: c1\ntitle: C1\n")
    settings = SimpleNamespace(courses_dir=tmp_path / "courses")
    assert expected_environment(settings, "c1") == "default"  # no environment folder
    assert expected_environment(settings, "not-in-catalog") == "default"
    (course / "environment").mkdir()
    (course / "environment" / "requirements.txt").write_text("tabulate\n")
    assert expected_environment(settings, "c1") == "default"  # no lock yet
    (course / "environment" / "requirements.lock").write_text("# python: 3.11\ntabulate==0.9.0\n")
    import hashlib

    lock_sha = hashlib.sha256((course / "environment" / "requirements.lock").read_bytes()).hexdigest()
    assert expected_environment(settings, "c1") == lock_sha


def test_a_relock_changes_the_catalog_digest_the_hub_checks(tmp_path):
    """The hub on Kubernetes warns when its image's catalog is not the one the Helm values were
    rendered from; the worker reads each course's lock from that image, so a lock counts too."""
    course = tmp_path / "courses" / "c1"
    (course / "environment").mkdir(parents=True)
    (course / "course.yaml").write_text("id: c1\ntitle: C1\n")
    (course / "environment" / "requirements.txt").write_text("tabulate\n")
    unlocked = envs.catalog_digest(load_catalog(tmp_path / "courses"))
    (course / "environment" / "requirements.lock").write_text("# python: 3.11\ntabulate==0.9.0\n")
    locked = envs.catalog_digest(load_catalog(tmp_path / "courses"))
    assert locked != unlocked and envs.catalog_digest(load_catalog(tmp_path / "courses")) == locked  # stable
    (course / "environment" / "requirements.lock").write_text("# python: 3.11\ntabulate==0.8.10\n")
    assert envs.catalog_digest(load_catalog(tmp_path / "courses")) not in (locked, unlocked)


def test_headers_carry_the_environment_and_the_notebooks_kernels():
    files = {"a.ipynb": _nb("python3"), "b.ipynb": _nb("ir"), "c.ipynb": b"not json", "data.csv": b"1,2"}
    assert envparity.submission_headers(files, LOCK_A) == {envparity.HEADER_ENVIRONMENT: LOCK_A,
                                                           envparity.HEADER_KERNEL: "ir,python3"}
    assert envparity.submission_headers({"a.ipynb": _nb(None)}, "default") == {envparity.HEADER_ENVIRONMENT: "default"}


@pytest.mark.parametrize("value", ["", "../../etc/passwd", "a" * 63, "a" * 65, "g" * 64, f"{LOCK_A}\nX: 1", "none"])
def test_malformed_environment_values_are_not_stored(value):
    assert envparity.clean_environment(value) is None


def test_environment_and_kernel_values_are_normalised_or_refused():
    assert envparity.clean_environment(" " + LOCK_A.upper() + " ") == LOCK_A
    assert envparity.clean_kernel("python3, ir,python3") == "ir,python3"
    for bad in ("", "python 3", "x" * 65, "<script>", ",".join(f"k{i}" for i in range(9))):
        assert envparity.clean_kernel(bad) is None


# -- the comparison ----------------------------------------------------------------------------------
def test_parity_outcomes():
    rec = envparity.Recorded(LOCK_A, "python3")
    assert envparity.check(None, LOCK_A).outcome == "unrecorded"
    assert envparity.check(rec, LOCK_A, frozenset({"python3"})).outcome == "match"
    env = envparity.check(envparity.Recorded("default", "python3"), LOCK_A, frozenset({"python3"}))
    assert (env.outcome, env.graded) == ("mismatch", False)
    assert "environment default" in env.reason and LOCK_A[:12] in env.reason
    assert "--accept-environment-mismatch" in env.reason
    kernel = envparity.check(envparity.Recorded(LOCK_A, "ir,python3"), LOCK_A, frozenset({"python3"}))
    assert (kernel.outcome, kernel.graded) == ("mismatch", False) and "kernel ir" in kernel.reason
    accepted = envparity.check(envparity.Recorded(LOCK_B, None), LOCK_A, frozenset({"python3"}), accept=True)
    assert (accepted.outcome, accepted.graded) == ("accepted", True) and "accepted" in accepted.reason
    # no kernel recorded, or no source kernelspec: only the environment is compared
    assert envparity.check(envparity.Recorded(LOCK_A, None), LOCK_A, frozenset({"python3"})).outcome == "match"
    assert envparity.check(envparity.Recorded(LOCK_A, "ir"), LOCK_A).outcome == "match"


def test_the_parity_check_of_a_collected_folder_and_the_graded_record(tmp_path, caplog):
    index = SourceIndex("ps1", kernelspecs={"p1": json.dumps({"name": "python3"}), "p2": None, "p3": "{bad"})
    assert source_kernels(index) == frozenset({"python3"})
    check = ParityCheck(LOCK_A, source_kernels(index))
    sub = tmp_path / "submitted" / "s1" / "ps1"
    sub.mkdir(parents=True)
    with caplog.at_level("INFO"):
        unrecorded = check.check(sub, "s1", "ps1")
    assert unrecorded.outcome == "unrecorded" and "no environment recorded" in caplog.text
    (sub / envparity.RECORD_FILE).write_bytes(envparity.Recorded("default", "python3").to_bytes())
    assert not check.check(sub, "s1", "ps1").graded
    (sub / envparity.RECORD_FILE).write_text('{"environment": "../../x"}')  # unreadable: as if absent
    assert check.check(sub, "s1", "ps1").outcome == "unrecorded"
    (sub / envparity.RECORD_FILE).write_bytes(envparity.Recorded(LOCK_A, "python3").to_bytes())
    graded = check.check(sub, "s1", "ps1")
    assert graded.outcome == "match"
    dest = tmp_path / "autograded" / "s1" / "ps1"
    dest.mkdir(parents=True)
    (dest / envparity.RECORD_FILE).write_bytes(graded.graded_record())
    assert envparity.graded_environment(dest) == LOCK_A
    assert envparity.graded_environments(tmp_path) == {("s1", "ps1"): LOCK_A}
    assert envparity.graded_environments(tmp_path / "nothing") == {}


def test_the_dashboard_cell_shows_the_graded_environment():
    from coursehub.grading.dashboard.data import build_overview

    course = SimpleNamespace(id="c1", title="C1", assignments=[SimpleNamespace(id="ps1")], late_policy=None,
                             assignment=lambda name: None, due_for=lambda a, s: None)
    subs = [{"assignment_id": "ps1", "student_id": s, "submitted_at": "2026-12-01T10:00:00+00:00", "late": False,
             "due_at": None} for s in ("s1", "s2")]
    view = build_overview(course, None, [], subs, environments={("s1", "ps1"): LOCK_A, ("zz", "ps1"): LOCK_B})
    cells = {line.student_id: line.cells["ps1"] for line in view.table}
    assert cells["s1"].environment == LOCK_A[:12]
    assert cells["s2"].environment == ""  # not graded (or graded without a record)


# -- the service keeps what the client reported, never what the files claim ----------------------------
@pytest.fixture
def core(tmp_path):
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import ExchangeCore

    catalog = load_catalog(make_courses(tmp_path / "courses"))
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    yield ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: catalog, UploadLimits())
    engine.dispose()


def _collected(core, prof, ids) -> dict[str, bytes]:
    _, chunks = core.collection_stream(prof, COURSE, "ps1", ids)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_the_service_stores_the_report_and_writes_it_into_collected_folders(core):
    from coursehub.grading.service.core import Caller

    prof = Caller("inst", {COURSE: frozenset({"instructor"})})
    core.release(prof, COURSE, "ps1", pack({"p1.ipynb": make_notebook().encode()}), force=False)
    alice, bob, mallory = (Caller(n, {COURSE: frozenset({"student"})}) for n in ("alice", "bob", "mallory"))
    forged = envparity.Recorded(LOCK_A, "python3").to_bytes()
    a = core.submit(alice, COURSE, "ps1", pack({"p1.ipynb": _nb("python3")}), None, LOCK_A, "python3")
    # a student's own record file is dropped: only the client's report counts
    b = core.submit(bob, COURSE, "ps1", pack({"p1.ipynb": _nb("python3"), envparity.RECORD_FILE: forged}),
                    None, "default", "python3")
    m = core.submit(mallory, COURSE, "ps1", pack({"p1.ipynb": _nb("python3"), envparity.RECORD_FILE: forged}))
    files = _collected(core, prof, [a["id"], b["id"], m["id"]])
    assert json.loads(files[f"{a['id']}/{envparity.RECORD_FILE}"]) == {"environment": LOCK_A, "kernel": "python3"}
    assert json.loads(files[f"{b['id']}/{envparity.RECORD_FILE}"]) == {"environment": "default", "kernel": "python3"}
    assert f"{m['id']}/{envparity.RECORD_FILE}" not in files  # unrecorded (an older client): graded as before
    listed = {r["student_id"]: r for r in core.submissions(prof, COURSE, "ps1")}
    assert (listed["alice"]["environment"], listed["bob"]["environment"], listed["mallory"]["environment"]) == (
        LOCK_A, "default", None)


def test_stock_nbgrader_submit_reports_the_environment_through_the_service(tmp_path, monkeypatch):
    """The real client and service over HTTP: `nbgrader submit` sends what its environment is (here a
    course image's variable) and the submitted notebooks' kernel; `nbgrader collect` leaves the record."""
    courses = make_courses(tmp_path / "courses")
    hub = FakeHub().start()
    try:
        tokens = {name: hub.add_user(name, groups) for name, groups in MEMBERS.items()}
        with running_service(tmp_path / "svc", courses, hub) as svc:
            backend = CoursehubBackend(tmp_path, svc, tokens)
            inst, alice = backend.actor("inst"), backend.actor("alice")
            prepare_release(inst, "ps1")
            inst.nbgrader("release_assignment", "ps1")
            alice.nbgrader("fetch_assignment", "ps1")
            (alice.home / "ps1" / "p1.ipynb").write_bytes(_nb("python3"))
            monkeypatch.setenv(envs.ENVIRONMENT_VAR, LOCK_B)
            alice.nbgrader("submit", "ps1")
            inst.nbgrader("collect", "ps1")
    finally:
        hub.stop()
    record = envparity.read_record(inst.home / "submitted" / "alice" / "ps1")
    assert record == envparity.Recorded(LOCK_B, "python3")
    assert ParityCheck("default", frozenset({"python3"})).check(
        inst.home / "submitted" / "alice" / "ps1", "alice", "ps1").outcome == "mismatch"


# -- the grading service's worker refuses too --------------------------------------------------------------
def test_the_queue_worker_gives_a_mismatch_a_status_and_writes_no_grade(tmp_path):
    from coursehub.grading.autograde.gradebook import GradebookWriter
    from coursehub.grading.queue.api import Lease
    from coursehub.grading.queue.worker import QueueWorker

    courses = tmp_path / "courses"
    (courses / "c1").mkdir(parents=True)
    (courses / "c1" / "course.yaml").write_text("id: c1\ntitle: C1\n")  # no environment folder: "default"
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    (course_dir / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'c1'\n")
    graded: list[str] = []

    class Executor:
        settings = SimpleNamespace(courses_dir=courses)

        def grade(self, job, index, config):
            graded.append(job.student)
            return SimpleNamespace(status="graded", student=job.student)

    worker = QueueWorker(queue=None, executor=Executor())  # type: ignore[arg-type]
    index = SourceIndex("ps1", kernelspecs={"p1": json.dumps({"name": "python3"})})
    from coursehub.grading.autograde.course import NbgraderCourse

    worker._courses[str(course_dir.resolve())] = (NbgraderCourse(course_dir), {"ps1": index})
    for student, made_in in (("from-image", LOCK_A), ("same", "default")):
        sub = course_dir / "submitted" / student / "ps1"
        sub.mkdir(parents=True)
        (sub / envparity.RECORD_FILE).write_bytes(envparity.Recorded(made_in, "python3").to_bytes())

    def lease(student: str) -> Lease:
        return Lease(1, "t", 1, "c1", "ps1", student, {"course_dir": str(course_dir)})

    refused = worker.grade(lease("from-image"))
    assert refused.status == envparity.MISMATCH and "environment aaaaaaaaaaaa" in refused.error
    assert graded == []  # nothing ran
    assert worker.grade(lease("same")).status == "graded" and graded == ["same"]
    with GradebookWriter(f"sqlite:///{tmp_path / 'gb.db'}", "c1") as writer:
        writer.apply(refused)  # no grade, no error
        assert writer.gb.students == []


def test_a_stored_submission_job_is_checked_against_the_services_record(tmp_path):
    """Jobs queued by a collect name the stored submission: the worker checks the service's record of
    it, not a submitted/ folder (which may not be written yet, or was edited)."""
    from coursehub.grading.autograde.course import NbgraderCourse
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.queue.api import Lease
    from coursehub.grading.queue.worker import QueueWorker
    from coursehub.grading.service.core import Caller, ExchangeCore

    courses = make_courses(tmp_path / "courses")  # abc101: no environment folder, so "default"
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    engine = make_engine(url)
    upgrade(url, engine)
    core = ExchangeCore(session_factory(engine), BlobStore(tmp_path / "store"), lambda: load_catalog(courses), UploadLimits())
    core.release(Caller("inst", {COURSE: frozenset({"instructor"})}), COURSE, "ps1",
                 pack({"p1.ipynb": make_notebook().encode()}), force=False)
    alice = Caller("alice", {COURSE: frozenset({"student"})})
    sub = core.submit(alice, COURSE, "ps1", pack({"p1.ipynb": _nb("python3")}), None, LOCK_A, "python3")
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    (course_dir / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = '{COURSE}'\n")
    folder = course_dir / "submitted" / "alice" / "ps1"  # a folder edited to claim the course's environment
    folder.mkdir(parents=True)
    (folder / envparity.RECORD_FILE).write_bytes(envparity.Recorded("default", "python3").to_bytes())

    class Executor:
        settings = SimpleNamespace(courses_dir=courses)

        def grade(self, job, index, config):
            raise AssertionError("a mismatched submission must not run")

    worker = QueueWorker(queue=SimpleNamespace(engine=engine), executor=Executor())  # type: ignore[arg-type]
    index = SourceIndex("ps1", kernelspecs={"p1": json.dumps({"name": "python3"})})
    worker._courses[str(course_dir.resolve())] = (NbgraderCourse(course_dir), {"ps1": index})
    lease = Lease(1, "t", 1, COURSE, "ps1", "alice",
                  {"course_dir": str(course_dir), "submission_id": sub["id"], "sha256": sub["sha256"]})
    try:
        refused = worker.grade(lease)
    finally:
        engine.dispose()
    assert refused.status == envparity.MISMATCH and f"environment {LOCK_A[:12]}" in refused.error
