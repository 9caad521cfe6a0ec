"""Environment parity on the queue worker whatever the executor (issue 15): the worker checks a stored
submission's recorded environment against the course's lock with its own settings, also when the
Kubernetes executor grades (which has no `settings` of its own); a mismatch completes with the status
environment-mismatch, no grade and no grading Job, unless the job accepts it
(`accept_environment_mismatch`, queued by the dashboard's "Grade anyway" action)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import requests
import yaml
from support import samples
from support.exchange import write_course

from coursehub.grading import envparity
from coursehub.grading.archive import UploadLimits, pack
from coursehub.grading.autograde import k8s_executor
from coursehub.grading.queue import JobQueue
from coursehub.grading.queue.models import DONE
from coursehub.grading.queue.submission import StoreReader
from coursehub.grading.queue.worker import QueueWorker
from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.platform.settings import load_settings

COURSE = "demo-101"  # the nbgrader demo course's course_id (support/samples.py)
LOCK_TEXT = "# python: 3.11\ntabulate==0.9.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
LOCK = hashlib.sha256(LOCK_TEXT.encode()).hexdigest()


# -- a Kubernetes API double for the executor ------------------------------------------------------------
class _WatchResponse:
    """A watch response as the kubernetes client reads it: JSON event lines."""

    status = 200

    def __init__(self, events: list[dict]) -> None:
        self.lines = [json.dumps(e).encode() + b"\n" for e in events]

    def stream(self, amt=None, decode_content=False):  # noqa: ANN001, ANN201 - urllib3's signature
        yield from self.lines

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class FakeBatch:
    """BatchV1Api double: records every Job created; plays its pod (fetches the input from the worker's
    job port with the Job's token, returns the notebooks unchanged, says done) and reports the Job
    Complete to the executor's watch."""

    def __init__(self) -> None:
        self.created: list = []

    def create_namespaced_job(self, namespace: str, body) -> None:  # noqa: ANN001 - a V1Job
        self.created.append(body)
        env = {e.name: e.value for e in body.spec.template.spec.containers[0].env}
        url, auth = env["COURSEHUB_JOB_URL"], {"Authorization": f"Bearer {env['COURSEHUB_JOB_TOKEN']}"}
        payload = requests.get(f"{url}/input", headers=auth, timeout=30).json()
        for name, text in payload["notebooks"].items():
            requests.put(f"{url}/notebooks/{name}", headers=auth, timeout=30,
                         json={"name": name, "status": "graded", "reason": "", "notebook": text}).raise_for_status()
        requests.post(f"{url}/done", headers=auth, timeout=30).raise_for_status()

    def list_namespaced_job(self, namespace: str, **kw) -> _WatchResponse:
        """:rtype: V1JobList"""
        name = kw["field_selector"].removeprefix("metadata.name=")
        return _WatchResponse([{"type": "MODIFIED", "object": {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}}}])

    def delete_namespaced_job(self, name: str, namespace: str, **kw) -> None:
        pass


class NoPods:
    def list_namespaced_pod(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
        raise AssertionError("the pod returned its results: no need to look at pods")


# -- a course with a locked environment, its stored submissions and the queue ---------------------------
@dataclass
class World:
    settings: object
    course_dir: Path
    queue: JobQueue
    subs: dict[str, dict]
    batch: FakeBatch

    def enqueue(self, student: str, **extra: object) -> int:
        sub = self.subs[student]
        return self.queue.enqueue(COURSE, "ps1", student, {"course_dir": str(self.course_dir),
                                                           "submission_id": sub["id"], "sha256": sub["sha256"],
                                                           **extra})

    def worker(self) -> QueueWorker:
        """The worker as its main() builds it on Kubernetes: the Kubernetes executor, the settings."""
        executor = k8s_executor.KubernetesExecutor(self.settings, KernelLimits(), batch=self.batch, core=NoPods())
        assert not hasattr(executor, "settings")  # what made the worker skip parity before
        return QueueWorker(self.queue, executor, store=StoreReader(self.settings.storage_dir()),
                           settings=self.settings)

    def grade_all(self) -> None:
        worker = self.worker()
        try:
            while worker.run_once():
                pass
        finally:
            worker.close()

    def scores(self) -> dict[str, float]:
        """student -> their ps1 score in the course's gradebook (students without a grade are absent)."""
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.course_dir / 'gradebook.db'}", COURSE) as gb:
            out = {}
            for s in gb.students:
                try:
                    out[s.id] = gb.find_submission("ps1", s.id).score
                except Exception:  # noqa: BLE001 - nbgrader's MissingEntry
                    continue
            return out

    def graded_record(self, student: str) -> dict | None:
        path = self.course_dir / "autograded" / student / "ps1" / envparity.RECORD_FILE
        return json.loads(path.read_text()) if path.is_file() else None


def make_courses(root: Path) -> Path:
    courses = root / "courses"
    write_course(courses, COURSE, {"instructors": ["prof"], "teaching_assistants": ["tara"]}, [{"id": "ps1"}])
    env = courses / COURSE / "environment"
    env.mkdir()
    (env / "requirements.txt").write_text("tabulate\n")
    (env / "requirements.lock").write_text(LOCK_TEXT)
    write_course(courses, "other-1", {"instructors": ["outsider"]}, [{"id": "hw"}])
    return courses


def make_world(settings_file: Path, demo_course: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """alice submitted from coursehub's own environment ("default"), bob from the course's (LOCK),
    carol with an older client (nothing recorded)."""
    from coursehub.grading.db import make_engine, session_factory, upgrade
    from coursehub.grading.service.core import Caller, ExchangeCore
    from coursehub.grading.storage import BlobStore
    from coursehub.platform.courses import load_catalog

    monkeypatch.setenv(k8s_executor.ENV_LISTEN, "127.0.0.1:0")  # the job port on loopback only
    settings = load_settings(settings_file)
    from coursehub.grading.autograde.environment import expected_environment

    assert expected_environment(settings, COURSE) == LOCK
    course_dir = settings.state_dir / "course-dirs" / COURSE  # where the dashboard looks for autograded/
    if not course_dir.exists():
        shutil.copytree(demo_course, course_dir)
    url = settings.grading_db_url()
    engine = make_engine(url)
    upgrade(url, engine)
    catalog = load_catalog(settings.courses_dir)
    core = ExchangeCore(session_factory(engine), BlobStore(settings.storage_dir()), lambda: catalog, UploadLimits())
    released = samples.released(course_dir)
    core.release(Caller("prof", {COURSE: frozenset({"instructor"})}), COURSE, "ps1",
                 pack({f"{n}.ipynb": nbformat.writes(nb).encode() for n, nb in released.items()}), force=True)
    subs = {}
    for student, made_in in (("alice", "default"), ("bob", LOCK), ("carol", None)):
        files = {f"{n}.ipynb": nbformat.writes(nb).encode()
                 for n, nb in samples.correct(samples.released(course_dir)).items()}
        kernel = ",".join(envparity.kernel_names(files)) or None
        subs[student] = core.submit(Caller(student, {COURSE: frozenset({"student"})}), COURSE, "ps1", pack(files),
                                    None, made_in, kernel if made_in else None)
    engine.dispose()
    return World(settings, course_dir, JobQueue(url, max_attempts=3), subs, FakeBatch())


@pytest.fixture
def world(tmp_path, demo_course, monkeypatch):
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"mode": "local", "state_dir": str(tmp_path / "state"),
                                             "courses_dir": str(make_courses(tmp_path))}))
    w = make_world(settings_file, demo_course, monkeypatch)
    yield w
    w.queue.engine.dispose()


# -- the worker -------------------------------------------------------------------------------------------
def test_on_kubernetes_a_mismatch_is_a_status_without_a_job_or_grade_and_a_match_is_graded(world):
    alice = world.enqueue("alice")
    world.grade_all()
    job = world.queue.get(alice)
    assert job.status == DONE and job.result["status"] == envparity.MISMATCH
    assert f"environment default, the course's is {LOCK[:12]}" in job.result["error"]
    assert world.batch.created == []  # no grading Job was created for it
    assert "alice" not in world.scores() and world.graded_record("alice") is None

    bob, carol = world.enqueue("bob"), world.enqueue("carol")
    world.grade_all()
    assert [world.queue.get(j).result["status"] for j in (bob, carol)] == ["graded", "graded"]
    assert len(world.batch.created) == 2  # one Job each
    scores = world.scores()
    assert scores["bob"] > 0 and scores["carol"] > 0 and "alice" not in scores
    assert world.graded_record("bob") == {"graded_environment": LOCK, "environment": LOCK, "kernel": "python3",
                                          "parity": "match"}
    assert world.graded_record("carol")["parity"] == "unrecorded"  # an older client: graded, as before


def test_a_job_that_accepts_the_mismatch_grades_it_and_records_both_environments(world):
    world.enqueue("alice")
    world.grade_all()
    assert world.batch.created == []
    accepted = world.enqueue("alice", **{envparity.ACCEPT_MISMATCH: True})
    world.grade_all()
    assert world.queue.get(accepted).result["status"] == "graded"
    assert len(world.batch.created) == 1 and world.scores()["alice"] > 0
    assert world.graded_record("alice") == {"graded_environment": LOCK, "environment": "default",
                                            "kernel": "python3", "parity": "accepted"}
    assert envparity.graded_environments(world.course_dir) == {("alice", "ps1"): LOCK}


@pytest.mark.parametrize("value", ["true", 1, "yes", {"x": 1}])
def test_only_a_literal_true_accepts_a_mismatch(world, value):
    job = world.enqueue("alice", **{envparity.ACCEPT_MISMATCH: value})
    world.grade_all()
    assert world.queue.get(job).result["status"] == envparity.MISMATCH and world.batch.created == []


def test_a_worker_without_settings_falls_back_to_the_executors(world):
    """Older direct constructions: the local executor carries the settings; nothing else checks."""
    class WithSettings:
        settings = world.settings

        def close(self) -> None:
            pass

    assert QueueWorker(world.queue, WithSettings()).settings is world.settings  # type: ignore[arg-type]
    bare = k8s_executor.KubernetesExecutor(world.settings, KernelLimits(), batch=world.batch, core=NoPods())
    assert QueueWorker(world.queue, bare).settings is None
    bare.close()


# -- the dashboard's "Grade anyway (accept environment)" -----------------------------------------------------
USERS = {"prof": [f"course:{COURSE}:instructor"], "tara": [f"course:{COURSE}:ta"],
         "alice": [f"course:{COURSE}:student"], "outsider": ["course:other-1:instructor"]}
ACCEPT_PATH = f"dashboard/{COURSE}/jobs/accept-environment"


@pytest.fixture
def service(tmp_path, demo_course, monkeypatch):
    """The real grading service (FakeHub identities) on the world's database, store and course folder."""
    from support.fakehub import FakeHub
    from support.grading import running_service

    courses = make_courses(tmp_path)
    shutil.copytree(demo_course, tmp_path / "svc" / "state" / "course-dirs" / COURSE)
    hub = FakeHub().start()
    tokens = {u: hub.add_user(u, g) for u, g in USERS.items()}
    try:
        with running_service(tmp_path / "svc", courses, hub) as svc:
            w = make_world(svc.settings_file, demo_course, monkeypatch)
            try:
                yield svc, tokens, w
            finally:
                w.queue.engine.dispose()
    finally:
        hub.stop()


def _get(svc, tokens, who, path):
    return requests.get(svc.url + path, headers={"Authorization": f"token {tokens[who]}"}, timeout=60,
                        allow_redirects=False)


def _post(svc, tokens, who, path, data):
    headers = {"Authorization": f"token {tokens[who]}"} if who else {}
    return requests.post(svc.url + path, headers=headers, data=data, timeout=60, allow_redirects=False)


def _status(svc, tokens, redirect) -> str:
    import re
    from html import unescape

    assert redirect.status_code == 302, redirect.text[:300]
    page = requests.get(requests.compat.urljoin(svc.url, redirect.headers["Location"]), timeout=60,
                        headers={"Authorization": f"token {tokens['prof']}"})
    found = re.search(r'<p class="note" role="status">(.*?)</p>', page.text, re.S)
    return unescape(found.group(1)) if found else ""


def _offered(html: str) -> list[str]:
    """Job ids the page offers "Grade anyway" for."""
    import re

    return re.findall(r'<tr data-job="(\d+)">', html)


def _cell(html: str, student: str) -> str:
    return html.split(f'<tr data-student="{student}"', 1)[1].split("</tr>", 1)[0]


def _jobs(w: World, student: str) -> list:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from coursehub.grading.queue.models import GradingJob

    with Session(w.queue.engine) as s:
        return list(s.scalars(select(GradingJob).where(GradingJob.student == student).order_by(GradingJob.id)))


def test_grade_anyway_is_offered_for_mismatched_submissions_only_and_to_the_courses_staff(service):
    svc, tokens, w = service
    alice, bob = w.enqueue("alice"), w.enqueue("bob")
    w.grade_all()
    page = _get(svc, tokens, "prof", f"dashboard/{COURSE}/")
    assert page.status_code == 200, page.text[:500]
    assert _offered(page.text) == [str(alice)]  # bob was graded: nothing to decide
    row = page.text.split(f'<tr data-job="{alice}">', 1)[1].split("</tr>", 1)[0]
    assert "environment default" in row and LOCK[:12] in row and "Grade anyway (accept environment)" in row
    assert 'name="_xsrf"' in row  # a form of the page, like the other actions
    assert f"env {LOCK[:12]}" in _cell(page.text, "bob") and "env " not in _cell(page.text, "alice")

    refused = {
        ("alice", ACCEPT_PATH, alice): 403,  # a student, even the submission's own
        ("outsider", ACCEPT_PATH, alice): 403,  # staff of another course
        ("outsider", "dashboard/other-1/jobs/accept-environment", alice): 404,  # this job, through their course
        ("prof", "dashboard/no-such-course/jobs/accept-environment", alice): 404,
        ("prof", ACCEPT_PATH, 999_999): 404,
        ("prof", ACCEPT_PATH, "x"): 400,
    }
    for (who, path, job_id), code in refused.items():
        assert _post(svc, tokens, who, path, {"id": str(job_id)}).status_code == code, (who, path, job_id)
    anonymous = _post(svc, tokens, None, ACCEPT_PATH, {"id": str(alice)})  # no hub login, no xsrf token
    assert anonymous.status_code in (302, 403)
    assert "not waiting" in _status(svc, tokens, _post(svc, tokens, "prof", ACCEPT_PATH, {"id": str(bob)}))
    assert [j.id for j in _jobs(w, "alice")] == [alice] and [j.id for j in _jobs(w, "bob")] == [bob]


def test_grade_anyway_queues_the_submission_with_the_mismatch_accepted_and_the_worker_grades_it(service):
    svc, tokens, w = service
    alice = w.enqueue("alice")
    w.grade_all()
    assert w.batch.created == []
    message = _status(svc, tokens, _post(svc, tokens, "tara", ACCEPT_PATH, {"id": str(alice)}))  # a TA may
    assert "queued to be graded anyway" in message
    old, new = _jobs(w, "alice")
    assert old.id == alice and new.status == "queued"
    assert new.payload == {**old.payload, envparity.ACCEPT_MISMATCH: True}  # the same stored submission
    page = _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    assert _offered(page) == []  # decided: the newest job is waiting
    again = _status(svc, tokens, _post(svc, tokens, "prof", ACCEPT_PATH, {"id": str(alice)}))
    assert "not waiting" in again and len(_jobs(w, "alice")) == 2  # a second click queues nothing

    w.grade_all()
    assert w.queue.get(new.id).result["status"] == "graded" and len(w.batch.created) == 1
    assert w.scores()["alice"] > 0
    assert w.graded_record("alice")["parity"] == "accepted"
    page = _get(svc, tokens, "prof", f"dashboard/{COURSE}/").text
    assert f"env {LOCK[:12]}" in _cell(page, "alice") and _offered(page) == []
