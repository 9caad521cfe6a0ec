"""The kernel template (sandbox/template.py): a zygote forked into a sandbox by a process that
imported ipykernel once must be exactly as confined as one started in the sandbox by bubblewrap.

A student's code looks at itself and its surroundings from inside the kernel; the test checks what
it saw against the slot's uid, an empty capability set, the worker's environment and the template
process. The same probe runs with the template turned off (`COURSEHUB_SANDBOX_TEMPLATE=0`): both
ways must agree, and the first way must really have used the template.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil

import nbformat
import pytest
from support import samples

from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.grader import Grader
from coursehub.grading.sandbox import bwrap, kernel_template
from coursehub.grading.sandbox.limits import KernelLimits

pytestmark = pytest.mark.skipif(not bwrap.privileged(), reason="the template is used only when the worker runs as root")

LIMITS = KernelLimits(cell_timeout_seconds=20, submission_timeout_seconds=60, memory_bytes=2 << 30, processes=48)
SECRET = "worker-secret-7f3a"

PROBE = """
import ctypes, json, os, sys
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: its own /proc files become readable to it
status = dict(l.rstrip('\\n').split(':\\t', 1) for l in open('/proc/self/status') if ':\\t' in l)
procs = {}
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            procs[p] = {'cmd': open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace'),
                        'env': open(f'/proc/{p}/environ', 'rb').read().decode(errors='replace')}
        except OSError as e:
            procs[p] = {'cmd': '', 'env': type(e).__name__}
try:
    import coursehub
    imported = True
except ImportError:
    imported = False
report = {
    'uid': status['Uid'].split(), 'gid': status['Gid'].split(), 'groups': status['Groups'].split(),
    'caps': {k: status[k] for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')},
    'nnp': status['NoNewPrivs'], 'environ': dict(os.environ), 'procs': procs, 'cwd': os.getcwd(),
    'self': str(os.getpid()),
    'coursehub': imported, 'finders': [type(f).__module__ for f in sys.meta_path],
    'host_course_visible': os.path.exists(%(course)r),
}
print('REPORT' + json.dumps(report))
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory, demo_course):
    root = tmp_path_factory.mktemp("template") / "course"
    shutil.copytree(demo_course, root)
    probe = PROBE % {"course": str(root)}
    samples.write_submission(root, "prober", samples.answer(samples.correct(samples.released(root)),
                                                            mean=probe + samples.SOLUTIONS["mean"]))
    return NbgraderCourse(root)


def probe(course: NbgraderCourse, slot: int) -> tuple[dict, int]:
    grader = Grader(course.source_index("ps1"), course.config, LIMITS, slot=slot)
    grader.start()
    try:
        result = grader.grade(course.job("prober", "ps1", course.source_index("ps1")))
        uid = grader.slots[0].uid
    finally:
        grader.close()
    assert result.status == "graded", result.reasons
    part1 = next(n for n in result.notebooks if n.name == "part1")
    text = "\n".join(str(o.get("text", "")) for c in nbformat.reads(part1.notebook, as_version=4).cells
                     for o in c.get("outputs", []))
    line = next(x for x in text.splitlines() if x.startswith("REPORT"))
    return json.loads(line.removeprefix("REPORT")), uid


@pytest.fixture
def fresh_template(monkeypatch):
    """A template started for this test, with a secret in the worker's environment."""
    monkeypatch.setenv(SECRET.upper().replace("-", "_"), SECRET)
    monkeypatch.setattr(kernel_template, "_current", None)
    yield
    if kernel_template._current is not None:
        kernel_template._current[1].close()


def check_confined(report: dict, uid: int) -> None:
    assert report["uid"] == [str(uid)] * 4 and report["gid"] == [str(uid)] * 4, (report["uid"], report["gid"])
    assert report["groups"] == []
    assert set(report["caps"].values()) == {"0000000000000000"}, report["caps"]
    assert report["nnp"] == "1"
    assert report["cwd"] == bwrap.WORKSPACE
    assert not report["coursehub"] and not report["host_course_visible"]
    assert not [f for f in report["finders"] if "coursehub" in f]
    assert not [k for k, v in report["environ"].items() if SECRET in v]
    # a forked process's /proc/self/environ is the environment its template was started with
    assert "PATH=" in report["procs"][report["self"]]["env"], report["procs"][report["self"]]
    for pid, proc in report["procs"].items():
        assert SECRET not in proc["env"], (pid, proc)
        assert "pytest" not in proc["cmd"], (pid, proc)  # nothing of the host is in sight


def test_a_zygote_forked_by_the_template_is_confined_like_one_bubblewrap_started(course, fresh_template):
    report, uid = probe(course, slot=70)
    started = kernel_template._current
    assert started is not None and started[1].alive(), "the template was not used"
    check_confined(report, uid)
    # what a sandbox holds: its init, the placeholder, the zygote, the kernels (their threads are
    # not listed); the template itself is outside the sandbox's pid namespace
    assert len(report["procs"]) <= 6, report["procs"]
    assert "sleep" in report["procs"]["2"]["cmd"]


def test_without_the_template_the_same_probe_sees_the_same(course, monkeypatch):
    monkeypatch.setenv(kernel_template.ENV, "0")
    monkeypatch.setenv(SECRET.upper().replace("-", "_"), SECRET)
    monkeypatch.setattr(kernel_template, "_current", None)
    report, uid = probe(course, slot=72)
    assert kernel_template._current is None  # not started
    check_confined(report, uid)


def _probe_in_a_worker(conn, course: NbgraderCourse) -> None:
    report, uid = probe(course, slot=78)
    conn.send((report, uid, kernel_template._current[1].proc.pid if kernel_template._current else None))
    kernel_template._current[1].close()


def test_a_template_started_ahead_and_taken_over_by_a_worker_confines_the_same(course, fresh_template):
    """`coursehub autograde` starts a template before its imports (the worker's secret is already
    in its environment) and its first forked worker takes it over: the same probe, the same answers."""
    kernel_template.prestart()
    assert kernel_template._prestarted is not None
    ahead = kernel_template._prestarted[1].proc
    fork = multiprocessing.get_context("fork")
    ours, theirs = fork.Pipe()
    worker = fork.Process(target=_probe_in_a_worker, args=(theirs, course))
    worker.start()
    kernel_template.release_prestarted()
    assert ours.poll(300), "the worker did not grade"
    report, uid, used = ours.recv()
    worker.join(60)
    kernel_template.reap_prestarted(timeout=30)
    assert used == ahead.pid, "the template started ahead was not the one used"
    check_confined(report, uid)


def test_a_dead_template_is_replaced(course, fresh_template):
    probe(course, slot=74)
    first = kernel_template._current[1]
    first.proc.kill()
    first.proc.wait()
    report, uid = probe(course, slot=76)
    assert kernel_template._current[1] is not first and kernel_template._current[1].alive()
    check_confined(report, uid)


def test_wanted_only_as_root_with_coursehubs_own_runtime(monkeypatch):
    monkeypatch.delenv(kernel_template.ENV, raising=False)
    assert kernel_template.wanted(True, True)
    assert not kernel_template.wanted(False, True)
    assert not kernel_template.wanted(True, False)  # a course environment's python: imports never as root
    monkeypatch.setenv(kernel_template.ENV, "0")
    assert not kernel_template.wanted(True, True)


def test_a_template_that_cannot_join_a_sandbox_is_given_up_and_grading_goes_on(course, fresh_template, monkeypatch,
                                                                                caplog):
    """Where the template cannot join a sandbox (a seccomp profile that forbids setns, say), the
    slot starts that sandbox again with its own zygote, and so does every later sandbox: the
    submission is graded, confined as ever, and the log says why once."""
    monkeypatch.setattr(kernel_template, "_disabled", None)
    attempts = []

    def refuse(self, *args, **kwargs):
        attempts.append(args)
        raise kernel_template.TemplateError("setns: Operation not permitted")

    monkeypatch.setattr(kernel_template.KernelTemplate, "enter", refuse)
    with caplog.at_level("WARNING", logger=kernel_template.__name__):
        report, uid = probe(course, slot=78)
    assert len(attempts) == 1  # given up after the first refusal, not tried for every sandbox
    assert kernel_template._disabled and "Operation not permitted" in kernel_template._disabled
    assert not kernel_template.wanted(True, True)
    assert [r for r in caplog.records if "given up" in r.getMessage()]
    check_confined(report, uid)


def test_a_template_that_cannot_be_started_is_given_up_and_grading_goes_on(course, monkeypatch):
    monkeypatch.setattr(kernel_template, "_disabled", None)
    monkeypatch.setattr(kernel_template, "_current", None)

    def cannot_start(self, popen):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(kernel_template.KernelTemplate, "__init__", cannot_start)
    report, uid = probe(course, slot=80)
    assert kernel_template._disabled and "could not be started" in kernel_template._disabled
    check_confined(report, uid)
