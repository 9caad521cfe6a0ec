"""What one submission leaves behind or uses up never reaches another: detached processes, deep
folder trees, memory across forked children, another run's fork bomb, output of every kind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
from support import samples

from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.grader import Grader
from coursehub.grading.sandbox import cgroups
from coursehub.grading.sandbox import slot as slot_mod
from coursehub.grading.sandbox.cleanup import remove_tree
from coursehub.grading.sandbox.limits import KernelLimits

LIMITS = KernelLimits(cell_timeout_seconds=10, submission_timeout_seconds=40, memory_bytes=1 << 30, processes=48,
                output_bytes=200_000, cpu_seconds=30)


@pytest.fixture(scope="module")
def course(tmp_path_factory, demo_course):
    root = tmp_path_factory.mktemp("isolation") / "course"
    shutil.copytree(demo_course, root)
    samples.write_submission(root, "honest", samples.correct(samples.released(root)))
    samples.write_submission(root, "persist", samples.PERSIST(samples.released(root)))
    samples.write_submission(root, "probe", samples.PROBE(samples.released(root)))
    for name, variant in samples.OUTPUT_FLOODS.items():
        samples.write_submission(root, name, variant(samples.released(root)))
    return NbgraderCourse(root)


@pytest.fixture(scope="module")
def grader(course):
    g = Grader(course.source_index("ps1"), course.config, LIMITS, slot=60)
    g.start()
    yield g
    g.close()


def grade(course, grader, student):
    return grader.grade(course.job(student, "ps1", course.source_index("ps1")))


def outputs(result, nb="part1"):
    n = next(x for x in result.notebooks if x.name == nb)
    return "\n".join(str(o) for c in nbformat.reads(n.notebook, as_version=4).cells for o in c.get("outputs", []))


def score(result, cell):
    return next(n.scores[cell]["auto_score"] for n in result.notebooks if cell in n.scores)


def _host_processes_with(marker: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(p))
        except (OSError, ValueError):
            continue
    return [p for p in out if not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def test_detached_processes_and_deep_trees_never_reach_the_next_student(course, grader):
    hostile = grade(course, grader, "persist")
    assert hostile.status == "graded", hostile.reasons
    used = [s for s in grader.slots]
    grader.wait_idle()
    # every process the submission started is gone from the host; what runs as the slots' uids now
    # is only the next, new sandbox (its own pid namespace)
    assert _host_processes_with(samples.PERSIST_MARKER) == []
    for s in used:
        assert set(slot_mod.processes_of_uid(s.uid)) <= set(slot_mod.processes_in_ns(s.ns_inode))
    # both slots (so also the one the hostile submission used) serve the next students normally
    for _ in range(2):
        probe = grade(course, grader, "probe")
        assert probe.status == "graded", probe.reasons
        out = outputs(probe)
        assert "PROCS []" in out and "FILES []" in out, out
        assert score(probe, "test-mean") == 3.0
    honest = grade(course, grader, "honest")
    assert honest.status == "graded" and honest.score() == 7.0


def test_a_slot_that_cannot_be_proven_clean_is_retired_never_reused(course, grader, monkeypatch):
    grader.wait_idle()
    victim = grader.slot
    real = slot_mod.SandboxSlot.leftovers
    monkeypatch.setattr(slot_mod.SandboxSlot, "leftovers",
                        lambda self: [999_999_999] if self is victim else real(self))
    result = grade(course, grader, "honest")  # graded in `victim`, which then cannot be proven clean
    assert result.status == "graded" and result.score() == 7.0
    grader.wait_idle()
    monkeypatch.setattr(slot_mod.SandboxSlot, "leftovers", real)
    assert victim.retired and victim in grader.retired and victim not in grader.slots
    assert victim.lease.held  # its uid stays taken: no later sandbox on this host gets it
    with pytest.raises(slot_mod.SlotRetired):
        victim.start()
    for _ in range(3):
        r = grade(course, grader, "honest")
        assert r.status == "graded" and r.score() == 7.0
    assert all(s.uid != victim.uid for s in grader.slots)


@pytest.mark.parametrize("case", list(samples.OUTPUT_FLOODS))
def test_output_cap_covers_every_message_type(course, grader, case):
    result = grade(course, grader, case)
    assert result.status == "output_limit", (result.status, result.reasons)
    assert score(result, "test-mean") == 0
    part1 = next(n for n in result.notebooks if n.name == "part1")
    assert len(part1.notebook) < 3 * LIMITS.output_bytes, len(part1.notebook)
    assert score(result, "test-warmest") == 2.0  # part2, its own kernel, is unaffected


@pytest.mark.skipif(cgroups.detect() is None, reason="no usable cgroup memory controller on this host")
def test_memory_is_limited_per_submission_not_per_process(course, tmp_path):
    """Four children of 300 MiB each, under a 512 MiB setting: each fits its per-process limit
    (address space 1.5 GiB); the submission as a whole must not get them all."""
    limits = KernelLimits(cell_timeout_seconds=20, submission_timeout_seconds=60, memory_bytes=512 << 20)
    samples.write_submission(course.root, "forker", samples.fork_memory(4, 300)(samples.released(course.root)))
    with Grader(course.source_index("ps1"), course.config, limits, slot=64) as g:
        result = grade(course, g, "forker")
    out = outputs(result)
    got = [int(n) for n in re.findall(r"CHILDREN_OK (\d+)", out)]
    assert got == [] or got[0] < 4, out[:2000]
    assert score(result, "test-squares") == 2.0


BOMB_RUN = """
import sys
sys.path.insert(0, {tests!r})
from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.grader import Grader
from coursehub.grading.sandbox.cleanup import remove_tree
from coursehub.grading.sandbox.limits import KernelLimits
c = NbgraderCourse({root!r}); idx = c.source_index("ps1")
g = Grader(idx, c.config, KernelLimits(cell_timeout_seconds=15, submission_timeout_seconds=25, processes=48), slot=0)
g.start()
print(" ".join(str(s.uid) for s in g.slots), flush=True)
print(" ".join(str(s.root) for s in g.slots), flush=True)
g.grade(c.job("bomber", "ps1", idx))
g.close()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="slot uids are real host uids only when the grader runs as root")
def test_another_runs_fork_bomb_does_not_starve_this_run(course):
    samples.write_submission(course.root, "bomber", samples.HOSTILE["fork_bomb"](samples.released(course.root)))
    tests = str(samples.__file__).rsplit("/support/", 1)[0]
    other = subprocess.Popen([sys.executable, "-c", BOMB_RUN.format(tests=tests, root=str(course.root))],
                             stdout=subprocess.PIPE, text=True)
    their_roots: list[str] = []
    try:
        their_uids = [int(x) for x in other.stdout.readline().split()]
        their_roots = other.stdout.readline().split()
        deadline = time.monotonic() + 60
        while max(len(slot_mod.processes_of_uid(u)) for u in their_uids) < 20:  # the bomb is under way
            assert time.monotonic() < deadline and other.poll() is None, "the other run's fork bomb never started"
            time.sleep(0.1)
        # this run asks for the same slot number, as a second course's run on the host would
        with Grader(course.source_index("ps1"), course.config, LIMITS, slot=0) as mine:
            assert not {s.uid for s in mine.slots} & set(their_uids)
            result = grade(course, mine, "honest")
        assert result.status == "graded" and result.score() == 7.0, result.reasons
    finally:
        other.kill()
        other.wait()
        for root in their_roots:
            remove_tree(root)  # SIGKILLed: it could not clean up after itself


def test_the_sandboxs_python_starts_without_coursehub(tmp_path):
    """The zygote is the only code of coursehub in a sandbox: the Python it starts imports no
    coursehub module (a checkout's editable-install finder included), `import coursehub` fails,
    and coursehub's `.pth` files hold only comments inside."""
    from coursehub.grading.sandbox import bwrap, uids

    lease = uids.acquire(preferred=400)
    try:
        spec = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=lease.uid)
        for d in (spec.workspace, spec.run_dir):
            d.mkdir()
            if bwrap.privileged():
                os.chown(d, lease.uid, lease.uid)
        cmd = bwrap.sandbox_command(spec)
        assert cmd[-1] == bwrap.ZYGOTE_PATH
        code = ("import sys\n"
                "print(sorted(m for m in sys.modules if 'coursehub' in m))\n"
                f"print([open(p).read() for p in {[str(p) for p in bwrap.coursehub_path_files()]!r}])\n"
                "try:\n    import coursehub\nexcept ImportError:\n    print('no coursehub')\n")
        proc = subprocess.run([*cmd[:-1], "-c", code], capture_output=True, text=True, timeout=60)
    finally:
        lease.release()
    assert proc.returncode == 0, proc.stderr
    mods, contents, imported = proc.stdout.splitlines()
    assert mods == "[]", mods
    for text in eval(contents):  # noqa: S307 - our own printed list literal
        assert all(line.startswith("#") for line in text.splitlines()), text
    assert imported == "no coursehub"
