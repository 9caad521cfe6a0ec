"""Hostile submissions: each is contained, gets a clear status, and the grader stays healthy.

All cases share one Grader (one worker with its two sandbox slots) with small limits, in order;
after all of them an ordinary submission must still get full marks.
"""

from __future__ import annotations

import hashlib

import pytest
from support import samples

from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.grader import Grader
from coursehub.grading.sandbox.limits import KernelLimits

LIMITS = KernelLimits(cell_timeout_seconds=2, submission_timeout_seconds=12, memory_bytes=2 << 30, processes=48,
                output_bytes=200_000, file_size_bytes=8 << 20, tmp_bytes=8 << 20, cpu_seconds=30)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_course):
    import shutil

    root = tmp_path_factory.mktemp("hostile") / "course"
    shutil.copytree(demo_course, root)
    samples.write_submission(root, "victim", samples.correct(samples.released(root)))
    secrets = [str(root / "submitted" / "victim" / "ps1" / "part1.ipynb"), str(root / "gradebook.db"),
               str(root / "source" / "ps1" / "part1.ipynb"), "/etc/shadow", "/proc/1/environ"]
    for name, variant in samples.HOSTILE.items():
        samples.write_submission(root, name, variant(samples.released(root)))
    samples.write_submission(root, "snoop", samples.snoop(secrets)(samples.released(root)))
    course = NbgraderCourse(root)
    index = course.source_index("ps1")
    grader = Grader(index, course.config, LIMITS, slot=40)
    grader.start()
    yield course, index, grader, secrets
    grader.close()


def grade(setup, student):
    course, index, grader, _ = setup
    return grader.grade(course.job(student, "ps1", index))


def outputs(result, nb="part1"):
    import nbformat

    n = next(x for x in result.notebooks if x.name == nb)
    return "\n".join(str(o) for c in nbformat.reads(n.notebook, as_version=4).cells for o in c.get("outputs", []))


def score(result, cell):
    return next(n.scores[cell]["auto_score"] for n in result.notebooks if cell in n.scores)


EXPECTED = {
    # case: (status, mean test score) -- every hostile code sits in the `mean` answer cell
    "infinite_loop": ("timeout", 0),
    "sleep_forever": ("timeout", 0),
    "ignore_interrupt": ("timeout", 0),
    "fork_bomb": ("timeout", 0),
    "memory_bomb": ("graded", 0),
    "huge_file": ("graded", 0),
    "tmp_fill": ("graded", 0),
    "output_flood": ("output_limit", 0),
    "network": ("graded", 0),
    "os_exit": ("incomplete", 0),
    "sys_exit": ("graded", 0),
    "kill_parent": ("incomplete", 0),
    # tries to send fake "kernel exited" events up the zygote's pipe: cannot open it
    "grader_pipe": ("graded", 3.0),
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_contained_with_clear_status(setup, case):
    result = grade(setup, case)
    status, mean = EXPECTED[case]
    assert result.status == status, (result.status, result.reasons)
    assert score(result, "test-mean") == mean
    # the other answers were fine: what ran before the hostile cell keeps its points, and part2
    # (its own fresh kernel) is unaffected
    assert score(result, "test-squares") == 2.0
    assert score(result, "test-warmest") == 2.0
    if status != "graded":
        assert result.reasons
    if case == "network":
        assert "Network is unreachable" in outputs(result)
    if case == "memory_bomb":
        assert "MemoryError" in outputs(result)
    if case == "huge_file":
        assert "File too large" in outputs(result)
    if case == "tmp_fill":
        assert "No space left" in outputs(result) or "File too large" in outputs(result)


def test_reading_other_students_and_the_gradebook_fails(setup):
    result = grade(setup, "snoop")
    out = outputs(result)
    course, _, _, secrets = setup
    for path in secrets:
        assert path in out
    assert "No such file or directory" in out or "Permission denied" in out
    assert "SQLite format" not in out
    victim = (course.root / "submitted" / "victim" / "ps1" / "part1.ipynb").read_bytes()[:60]
    assert repr(victim)[2:40] not in out
    assert result.status == "graded" and score(result, "test-mean") == 3.0


def test_rewriting_notebooks_on_disk_changes_nothing(setup):
    course, _, _, _ = setup
    files = sorted(course.root.rglob("*.ipynb"))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    result = grade(setup, "rewrite_tests_on_disk")
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
    assert result.status == "graded" and score(result, "test-mean") == 3.0


def test_edited_test_cells_are_restored(setup):
    course, _, _, _ = setup
    samples.write_submission(course.root, "editor", samples.edited_tests(samples.released(course.root)))
    result = grade(setup, "editor")
    assert score(result, "test-mean") == 0 and score(result, "test-warmest") == 0


def test_kernels_collect_garbage_like_any_kernel(setup):
    """The zygote imports with the collector off and freezes what it imported before it forks: the
    kernels it forks must still have the collector on, or a student's reference cycles would never
    be freed and a correct, allocation-heavy answer could run out of memory."""
    course, _, _, _ = setup
    probe = ("import gc\nclass Node:\n    pass\nn = Node()\nn.me = n\ndel n\n"
             "print('collector', gc.isenabled(), gc.collect() >= 1, gc.get_threshold()[0] > 0)\n")
    samples.write_submission(course.root, "cycles", samples.answer(
        samples.correct(samples.released(course.root)), mean=probe + samples.SOLUTIONS["mean"]))
    result = grade(setup, "cycles")
    assert "collector True True True" in outputs(result)
    assert result.status == "graded" and score(result, "test-mean") == 3.0


def test_kernels_have_all_of_jupyter_client_on_first_use(setup):
    """The zygote makes jupyter_client's package without its client side (kernels do not use it):
    a student who imports the client side still gets all of it."""
    course, _, _, _ = setup
    probe = ("import sys, jupyter_client\n"
             "lean = 'jupyter_client.manager' not in sys.modules\n"
             "from jupyter_client import KernelManager, BlockingKernelClient, find_connection_file\n"
             "print('client side', lean, KernelManager.__name__, BlockingKernelClient.__name__,\n"
             "      bool(jupyter_client.__version__), jupyter_client.AsyncKernelManager.__name__)\n")
    samples.write_submission(course.root, "client", samples.answer(
        samples.correct(samples.released(course.root)), mean=probe + samples.SOLUTIONS["mean"]))
    result = grade(setup, "client")
    assert "client side True KernelManager BlockingKernelClient True AsyncKernelManager" in outputs(result), \
        outputs(result)
    assert result.status == "graded" and score(result, "test-mean") == 3.0


def test_grader_is_healthy_afterwards(setup):
    course, _, grader, _ = setup
    result = grade(setup, "victim")
    assert result.status == "graded" and result.score() == 7.0
    grader.wait_idle()
    assert all(s.alive() for s in grader.slots)
