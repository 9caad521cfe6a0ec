"""Kernels start one notebook ahead: an idle sandbox slot holds the kernel of the assignment's first
notebook only, and each following notebook's kernel starts while the notebook before it runs. An
idle slot with a kernel per notebook held ~20 MiB per extra notebook for nothing (issue 17's
memory target)."""

from __future__ import annotations

import threading

import pytest

from coursehub.grading.autograde import grader as grader_module
from coursehub.grading.autograde.grader import Grader
from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.grading.sandbox.slot import SandboxError, SandboxSlot

LIMITS = KernelLimits(cell_timeout_seconds=20, submission_timeout_seconds=60)


@pytest.fixture
def events(monkeypatch):
    """What happened, in order: ("spawn", slot) for every kernel forked, ("run", notebook) and
    ("ran", notebook) around each notebook's execution."""
    log: list[tuple[str, object]] = []
    lock = threading.Lock()
    real_spawn = SandboxSlot.spawn
    real_run = grader_module.execute.run_notebook

    def spawn(self, *a, **kw):
        with lock:
            log.append(("spawn", self.slot))
        return real_spawn(self, *a, **kw)

    def run_notebook(km, nb, resources, *a, **kw):
        name = resources["nbgrader"]["notebook"]
        log.append(("run", name))
        try:
            return real_run(km, nb, resources, *a, **kw)
        finally:
            log.append(("ran", name))

    monkeypatch.setattr(SandboxSlot, "spawn", spawn)
    monkeypatch.setattr(grader_module.execute, "run_notebook", run_notebook)
    return log


def test_an_idle_slot_holds_one_kernel_and_the_next_starts_while_one_runs(alice_course, events):
    index = alice_course.source_index("ps1")
    assert len(index.notebooks) == 2
    with Grader(index, alice_course.config, LIMITS, slot=84) as g:
        g.wait_idle()
        # two slots, each ready for its next submission: one kernel each, not one per notebook
        assert [e for e in events if e[0] == "spawn"] == [("spawn", s.slot) for s in g.slots]
        events.clear()
        result = g.grade(alice_course.job("alice", "ps1", index))
        g.wait_idle()
    assert result.status == "graded" and result.score() == 7.0, (result.status, result.error, result.reasons)
    first, second = index.notebooks
    during_first = events[events.index(("run", first)) - 1:events.index(("ran", first))]
    # the second notebook's kernel was forked before the first notebook started running...
    assert ("spawn", g.slots[0].slot) in during_first, events
    # ...and none was forked for it when its turn came: it used the one started ahead
    between = events[events.index(("ran", first)):events.index(("run", second))]
    assert not [e for e in between if e[0] == "spawn"], events


def test_a_kernel_that_cannot_start_ahead_starts_on_its_turn_without_a_retry(alice_course, events, monkeypatch,
                                                                            caplog):
    """Starting ahead is only a head start: when that fork fails (an earlier notebook's leftovers
    may hold the sandbox's process limit), the submission is not retried in a new sandbox; the
    kernel starts when its notebook's turn comes."""
    index = alice_course.source_index("ps1")
    first, second = index.notebooks
    with Grader(index, alice_course.config, LIMITS, slot=86) as g:
        g.wait_idle()
        events.clear()
        spawn = SandboxSlot.spawn  # the events fixture's counting wrapper
        failed = []

        def failing_once(self, *a, **kw):
            if events.count(("run", first)) == 0 and not failed:  # the fork ahead, before part1 runs
                failed.append(self.slot)
                raise SandboxError("fork failed: [Errno 11] Resource temporarily unavailable")
            return spawn(self, *a, **kw)

        monkeypatch.setattr(SandboxSlot, "spawn", failing_once)
        result = g.grade(alice_course.job("alice", "ps1", index))
        g.wait_idle()
    assert failed, "the fork ahead was never attempted"
    assert result.status == "graded" and result.score() == 7.0, (result.status, result.error, result.reasons)
    assert events.count(("run", first)) == 1 and events.count(("run", second)) == 1, events
    assert "infrastructure failure" not in caplog.text  # graded in its first sandbox, not retried


def test_a_grader_needing_no_spare_starts_no_sandbox_ahead_and_still_grades(alice_course, events):
    """At the end of a batch a slot started ahead would never be used: its sandbox and kernel were
    paid for nothing and waited for at exit. Told it needs no spare, the grader only tears a
    finished slot down; a slot needed after all starts when its turn comes."""
    index = alice_course.source_index("ps1")
    with Grader(index, alice_course.config, LIMITS, slot=88, spare_needed=lambda: False) as g:
        g.wait_idle()
        assert [s.alive() for s in g.slots] == [True, False]
        assert [e for e in events if e[0] == "spawn"] == [("spawn", g.slots[0].slot)]
        results = []
        for _ in range(3):
            results.append(g.grade(alice_course.job("alice", "ps1", index)))
            g.wait_idle()
            assert not any(s.alive() for s in g.slots), "a finished slot was started again"
            assert not any(s.leftovers() for s in g.slots)
    for result in results:
        assert result.status == "graded" and result.score() == 7.0, (result.status, result.error, result.reasons)
    # one kernel per notebook per submission, and none ahead for a submission that never came
    assert len([e for e in events if e[0] == "spawn"]) == 3 * len(index.notebooks)


def test_a_pool_told_its_batch_size_starts_no_sandbox_that_no_submission_uses(alice_course, tmp_path, monkeypatch):
    """`coursehub autograde` tells its pool how many submissions come: three submissions on two
    workers start the two workers' first slots, a spare for a worker that sets up while all three
    are untaken (one of them grades two), and no sandbox after a submission, since no worker can
    then get two more. Before: seven starts, two at set-up and one after each submission."""
    from coursehub.grading.autograde.pool import GraderPool

    starts = tmp_path / "starts"
    real_start = SandboxSlot.start

    def start(self):
        with open(starts, "a") as f:  # the workers are forked processes: counted in a file
            f.write(f"{self.slot}\n")
        return real_start(self)

    monkeypatch.setattr(SandboxSlot, "start", start)
    index = alice_course.source_index("ps1")
    jobs = [alice_course.job("alice", "ps1", index) for _ in range(3)]
    with GraderPool(index, alice_course.config, LIMITS, 2, first_slot=90, total=len(jobs)) as pool:
        results = list(pool.grade(jobs))
    assert [(r.status, r.score()) for r in results] == [("graded", 7.0)] * 3, [(r.error, r.reasons) for r in results]
    # 3 or 4: the second worker to set up may already see a submission taken (then no spare)
    assert len(starts.read_text().split()) in (3, 4), starts.read_text()
