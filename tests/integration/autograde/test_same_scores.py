"""Our grades equal `nbgrader autograde`'s, cell by cell, on the same submissions and source."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
from support import samples
from support.venv import venv_env

#: the issue's set; "partly" also prints to stderr (0 for that test in nbgrader) and is submitted late
VARIANTS = ["correct", "partly", "wrong", "erroring", "empty", "edited_tests", "deleted_grade_cells"]


def test_cell_by_cell_equal_to_nbgrader(course_copy):
    ours = course_copy("ours")
    for name in VARIANTS:
        samples.write_submission(ours, name, samples.ORDINARY[name](samples.released(ours)))
    samples.write_submission(ours, "cheat-always-eq", samples.HOSTILE["always_eq"](samples.released(ours)))
    samples.write_submission(ours, "partly", samples.partly(samples.released(ours)),
                             timestamp="2030-01-01 00:00:00.000000 UTC")
    upstream = ours.parent / "upstream"
    shutil.copytree(ours, upstream)

    proc = samples.run_nbgrader_autograde(upstream)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = venv_env()
    mine = subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(ours),
                           "--workers", "2", "--no-progress"], env=env, capture_output=True, text=True)
    assert mine.returncode == 0, mine.stdout + mine.stderr
    assert "graded" in mine.stdout and "8 submission(s)" in mine.stdout

    a = samples.gradebook_snapshot(f"sqlite:///{upstream / 'gradebook.db'}", "demo-101")
    b = samples.gradebook_snapshot(f"sqlite:///{ours / 'gradebook.db'}", "demo-101")
    assert len(a) == 8 * 10  # 8 submissions x (4 grades + 4 comments + 2 late-penalty rows)
    assert {k: v for k, v in b.items() if a.get(k) != v} == {}
    assert a == b
    # and the scores are not trivially equal: the variants really differ
    totals = {s: sum(v[0] or 0 for k, v in a.items() if k[0] == s and k[3] == "grade") for s in ("correct", "wrong")}
    assert totals == {"correct": 7.0, "wrong": 0.0}

    # formgrader/feedback input: autograded/ notebooks exist as nbgrader writes them
    for student in ("correct", "edited_tests"):
        for nb in ("part1", "part2"):
            ours_nb = nbformat.read(ours / "autograded" / student / "ps1" / f"{nb}.ipynb", as_version=4)
            up_nb = nbformat.read(upstream / "autograded" / student / "ps1" / f"{nb}.ipynb", as_version=4)
            assert [c.source for c in ours_nb.cells] == [c.source for c in up_nb.cells]


def test_regrade_skips_then_force_regrades(course_copy):
    from coursehub.grading.autograde.course import NbgraderCourse

    course = course_copy()
    samples.write_submission(course, "alice", samples.correct(samples.released(course)))
    cmd = [sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(course), "--no-progress",
           "--workers", "1"]
    env = venv_env()
    assert not NbgraderCourse(course).already_graded("alice", "ps1")
    assert subprocess.run(cmd, env=env, capture_output=True, text=True).returncode == 0
    assert NbgraderCourse(course).already_graded("alice", "ps1")  # a plain rerun skips it, as nbgrader does
    samples.write_submission(course, "alice", samples.wrong(samples.released(course)))
    forced = subprocess.run([*cmd, "--force"], env=env, capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    snap = samples.gradebook_snapshot(f"sqlite:///{course / 'gradebook.db'}", "demo-101")
    assert snap[("alice", "part1", "test-squares", "grade")][0] == 0


class cpu_hogs:
    """Busy-loop processes beside the test, for its duration: a loaded machine (issue 17)."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> cpu_hogs:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def test_same_scores_under_load(course_copy):
    """A grade never depends on load: every ordinary variant (twice), graded with CPU hogs beside the
    grader, equals nbgrader's grades from an unloaded run, cell by cell."""
    ours = course_copy("ours")
    students = samples.varied(2 * len(samples.ORDINARY))
    for student, variant in students:
        samples.write_submission(ours, student, variant(samples.released(ours)),
                                 timestamp="2026-12-18 12:00:00.000000 UTC")
    upstream = ours.parent / "upstream"
    shutil.copytree(ours, upstream)
    proc = samples.run_nbgrader_autograde(upstream)
    assert proc.returncode == 0, proc.stderr[-3000:]

    env = venv_env()
    with cpu_hogs(4):
        mine = subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(ours),
                               "--workers", "2", "--no-progress"], env=env, capture_output=True, text=True)
    assert mine.returncode == 0, mine.stdout + mine.stderr
    a = samples.gradebook_snapshot(f"sqlite:///{upstream / 'gradebook.db'}", "demo-101")
    b = samples.gradebook_snapshot(f"sqlite:///{ours / 'gradebook.db'}", "demo-101")
    assert {s for s, *_ in a} == {s for s, _ in students}
    assert {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)} == {}, mine.stdout


def test_nbgraders_quickstart_course_cell_by_cell_equal_to_nbgrader(tmp_path):
    """Another course than ours (issue 17 measures on it): nbgrader's quickstart, its header
    notebook and image included; submissions made from its source version's answers."""
    env = venv_env()
    made = subprocess.run([sys.executable, "-m", "nbgrader", "quickstart", "course101"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    ours = tmp_path / "course101"
    samples.generate_assignment(ours)
    variants = samples.any_assignment_variants(samples.source_answers(ours))
    students = samples.varied(len(variants), variants)
    for student, variant in students:
        samples.write_submission(ours, student, variant(samples.released(ours)))
    upstream = tmp_path / "upstream"
    shutil.copytree(ours, upstream)
    proc = samples.run_nbgrader_autograde(upstream)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mine = subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(ours),
                           "--no-progress"], cwd=ours, env=env, capture_output=True, text=True)
    assert mine.returncode == 0, mine.stdout + mine.stderr

    a = samples.gradebook_snapshot(f"sqlite:///{upstream / 'gradebook.db'}", "course101")
    b = samples.gradebook_snapshot(f"sqlite:///{ours / 'gradebook.db'}", "course101")
    assert {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)} == {}, mine.stdout
    totals = {s: sum(v[0] or 0 for k, v in a.items() if k[0] == s and k[3] == "grade") for s, _ in students}
    # the source's answers earn every automatic point; unanswered and erroring ones earn none
    max_auto = sum(v[2] for k, v in a.items() if k[0] == "s0000-solved" and k[3] == "grade" and not v[1])
    assert max_auto > 0 and totals["s0000-solved"] == max_auto, totals
    assert totals["s0003-empty"] == totals["s0002-erroring"] == 0, totals
    # written answers left unanswered score 0 at once; answered ones wait for a person
    manual = {s: sum(1 for k, v in a.items() if k[0] == s and k[3] == "grade" and v[1]) for s in totals}
    assert manual["s0000-solved"] > manual["s0001-half"], manual
