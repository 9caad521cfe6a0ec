"""Varied submissions of an nbgrader assignment, made from its release version by editing cells.

Used by the tests and the benchmark: correct, partly correct, wrong, erroring, empty, edited test
cells, deleted grade cells, and hostile ones (each a function of the released notebooks).
Cells are found by their nbgrader grade_id; only the demo course's ps1 ids are known here. For any
other assignment (`any_assignment_variants`), answers come from its source version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

from support.venv import venv_env

Notebooks = dict[str, nbformat.NotebookNode]

SOLUTIONS = {
    "squares": "def squares(n):\n    return [i * i for i in range(1, n + 1)]\n",
    "mean": "def mean(values):\n    if not values:\n        raise ValueError('empty')\n    return sum(values) / len(values)\n",
    "warmest": "warmest_day = days[temperatures.index(max(temperatures))]\n",
    "explain": "Yes, mostly: the last days are warmer. One week is too short to tell.",
}


def make_course(root: Path, source: Path, assignment: str = "ps1", course_id: str = "demo-101") -> Path:
    """A fresh nbgrader course folder with the assignment generated (gradebook + release)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, root / "source" / assignment)
    (root / "nbgrader_config.py").write_text(f'c = get_config()\nc.CourseDirectory.course_id = "{course_id}"\n')
    generate_assignment(root, assignment)
    return root


def generate_assignment(course: Path, assignment: str = "ps1") -> None:
    """`nbgrader generate_assignment` in a course folder: its gradebook and release version."""
    env = venv_env()
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--log-level=ERROR"],
                          cwd=course, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed in {course}:\n{done.stderr[-3000:]}")


def released(course: Path, assignment: str = "ps1") -> Notebooks:
    rel = course / "release" / assignment
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(rel.glob("*.ipynb"))}


def cell(nbs: Notebooks, grade_id: str) -> nbformat.NotebookNode:
    for nb in nbs.values():
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                return c
    raise KeyError(grade_id)


def answer(nbs: Notebooks, **sources: str) -> Notebooks:
    for gid, src in sources.items():
        cell(nbs, gid).source = src
    return nbs


def write_submission(course: Path, student: str, nbs: Notebooks, assignment: str = "ps1",
                     timestamp: str | None = None) -> Path:
    dest = course / "submitted" / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name, nb in nbs.items():
        nbformat.write(nb, dest / f"{name}.ipynb")
    if timestamp:
        (dest / "timestamp.txt").write_text(timestamp)
    return dest


# -- ordinary submissions (scores must equal nbgrader's) ------------------------------------------
def correct(nbs):
    return answer(nbs, **SOLUTIONS)


def partly(nbs):
    return answer(nbs, squares=SOLUTIONS["squares"], mean="def mean(values):\n    return sum(values) / len(values)\n",
                  warmest="warmest_day = 3\n")


def wrong(nbs):
    return answer(nbs, squares="def squares(n):\n    return list(range(n))\n", mean="def mean(values):\n    return 0\n",
                  warmest="warmest_day = 0\n")


def erroring(nbs):
    return answer(nbs, squares="def squares(n):\n    return undefined_name\n", mean="raise RuntimeError('oops')\n",
                  warmest="warmest_day = days[99]\n")


def empty(nbs):
    return nbs


def edited_tests(nbs):
    nbs = correct(nbs)
    answer(nbs, mean="def mean(values):\n    return 0\n")
    cell(nbs, "test-mean").source = "assert True  # the student rewrote the test\n"
    cell(nbs, "test-warmest").source = "pass\n"
    return answer(nbs, warmest="warmest_day = 1\n")


def deleted_grade_cells(nbs):
    nbs = answer(nbs, **SOLUTIONS)
    for nb in nbs.values():
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("test-squares", "explain")]
    return nbs


def stderr_and_partial(nbs):
    nbs = correct(nbs)
    return answer(nbs, mean=SOLUTIONS["mean"] + "import sys\nprint('debug', file=sys.stderr)\n")


def missing_notebook(nbs):
    nbs = correct(nbs)
    nbs.pop(sorted(nbs)[-1])
    return nbs


ORDINARY: dict[str, Callable[[Notebooks], Notebooks]] = {
    "correct": correct, "partly": partly, "wrong": wrong, "erroring": erroring, "empty": empty,
    "edited_tests": edited_tests, "deleted_grade_cells": deleted_grade_cells,
    "stderr_and_partial": stderr_and_partial, "missing_notebook": missing_notebook,
}


def varied(n: int, variants: dict[str, Callable[[Notebooks], Notebooks]] | None = None,
           ) -> list[tuple[str, Callable[[Notebooks], Notebooks]]]:
    """n (student, variant) pairs cycling through the variants (default: the demo's ordinary ones)."""
    kinds = list((variants or ORDINARY).items())
    return [(f"s{i:04d}-{kinds[i % len(kinds)][0]}", kinds[i % len(kinds)][1]) for i in range(n)]


# -- any assignment: answers taken from its source version (benchmarks on a course of your own) ----
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader's default markers


def source_answers(course: Path, assignment: str = "ps1") -> dict[str, str]:
    """grade_id -> the instructor's answer for every solution cell of the assignment's source
    version: a code cell without its solution markers, a markdown cell as written."""
    out = {}
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        for c in nbformat.read(path, as_version=4).cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id"):
                lines = [ln for ln in c.source.splitlines()
                         if ln.strip() not in (BEGIN_SOLUTION, END_SOLUTION)] if c.cell_type == "code" else [c.source]
                out[meta["grade_id"]] = "\n".join(lines) + "\n"
    return out


def _solution_cells(nbs: Notebooks, code_only: bool = False) -> list[nbformat.NotebookNode]:
    return [c for nb in nbs.values() for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
            and (c.cell_type == "code" or not code_only)]


def _test_cells(nbs: Notebooks) -> list[nbformat.NotebookNode]:
    return [c for nb in nbs.values() for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]


def any_assignment_variants(answers: dict[str, str]) -> dict[str, Callable[[Notebooks], Notebooks]]:
    """The ordinary variants for an assignment whose cells are not known here: solved with the
    source's answers, half solved, wrong (erroring answers), unanswered, tests edited, a test cell
    deleted, a notebook missing, and output on stderr."""
    def answered(cells):
        for c in cells:
            c.source = answers.get(c.metadata["nbgrader"].get("grade_id"), c.source)

    def solved(nbs):
        answered(_solution_cells(nbs))
        return nbs

    def half(nbs):
        cells = _solution_cells(nbs)
        answered(cells[: len(cells) // 2])
        return nbs

    def erroring(nbs):
        for c in _solution_cells(nbs, code_only=True):
            c.source = "raise RuntimeError('oops')\n"
        return nbs

    def edited_tests(nbs):
        nbs = solved(nbs)
        for c in _test_cells(nbs)[:1]:
            c.source = "assert True  # the student rewrote the test\n"
        return nbs

    def deleted_test(nbs):
        nbs = solved(nbs)
        gone = {id(c) for c in _test_cells(nbs)[-1:]}
        for nb in nbs.values():
            nb.cells = [c for c in nb.cells if id(c) not in gone]
        return nbs

    def missing_notebook(nbs):
        nbs = solved(nbs)
        if len(nbs) > 1:
            nbs.pop(sorted(nbs)[-1])
        return nbs

    def stderr(nbs):
        nbs = solved(nbs)
        for c in _solution_cells(nbs, code_only=True)[:1]:
            c.source += "import sys\nprint('debug', file=sys.stderr)\n"
        return nbs

    return {"solved": solved, "half": half, "erroring": erroring, "empty": empty, "edited_tests": edited_tests,
            "deleted_test": deleted_test, "missing_notebook": missing_notebook, "stderr": stderr}


def gradebook_snapshot(db_url: str, course_id: str, assignment: str = "ps1") -> dict[tuple, tuple]:
    """Every grade and comment of an assignment, keyed by (student, notebook, cell), for comparing
    two gradebooks cell by cell. Values: (auto_score, needs_manual_grade, max_score) for grades,
    (auto_comment,) for comments; plus a late-penalty row per submitted notebook."""
    from nbgrader.api import Gradebook

    out: dict[tuple, tuple] = {}
    with Gradebook(db_url, course_id) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            for nb in sub.notebooks:
                key = (sub.student.id, nb.name)
                for g in nb.grades:
                    out[(*key, g.name, "grade")] = (g.auto_score, g.needs_manual_grade, g.max_score)
                for c in nb.comments:
                    out[(*key, c.name, "comment")] = (c.auto_comment,)
                out[(*key, "", "late_penalty")] = (nb.late_submission_penalty,)
    return out


def run_nbgrader_autograde(course: Path, assignment: str = "ps1") -> subprocess.CompletedProcess:
    """The upstream baseline: `nbgrader autograde` on a course folder. The baseline is not what is
    under test: when nbgrader reports a failed submission (its kernel can miss its start-up
    timeout while the other test worker loads the machine), it is run once more, and, as on any
    rerun of nbgrader's, grades only the submissions it has not autograded yet."""
    env = venv_env()
    cmd = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--log-level=ERROR"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"nbgrader autograde failed once, run again:\n{proc.stderr[-3000:]}", file=sys.stderr)
        proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    return proc


# -- hostile submissions (each must be contained and get a clear status) ---------------------------
def _hostile(code: str, where: str = "mean"):
    def variant(nbs):
        nbs = correct(nbs)
        return answer(nbs, **{where: code})
    variant.__name__ = f"hostile_{where}"
    return variant


HOSTILE: dict[str, Callable[[Notebooks], Notebooks]] = {
    "infinite_loop": _hostile("while True:\n    pass\n"),
    "sleep_forever": _hostile("import time\ntime.sleep(10**9)\n"),
    "ignore_interrupt": _hostile("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                 "while True:\n    time.sleep(1)\n"),
    "fork_bomb": _hostile("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"),
    "memory_bomb": _hostile("hog = []\nwhile True:\n    hog.append(bytearray(32 * 2**30))\n"),
    "huge_file": _hostile("with open('huge.bin', 'wb') as f:\n    while True:\n        f.write(b'0' * 2**20)\n"),
    "tmp_fill": _hostile("with open('/tmp/fill.bin', 'wb') as f:\n    while True:\n        f.write(b'0' * 2**20)\n"),
    "output_flood": _hostile("while True:\n    print('x' * 1000)\n"),
    "network": _hostile("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)\n"),
    "os_exit": _hostile("import os\nos._exit(0)\n"),
    "sys_exit": _hostile("import sys\nsys.exit(1)\n"),
    "kill_parent": _hostile("import os, signal\nfor pid in range(1, 400):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                            "    except OSError:\n        pass\n"),
    "grader_pipe": _hostile(
        "import os\nfor pid in range(1, 50):\n    for fd in (0, 1):\n        try:\n"
        "            with open(f'/proc/{pid}/fd/{fd}', 'w') as f:\n"
        "                f.write('{\"op\": \"exit\", \"pid\": %d, \"status\": 9}\\n' % pid)\n"
        "        except OSError:\n            pass\n" + SOLUTIONS["mean"]),
    "always_eq": _hostile("class Anything:\n    def __eq__(self, other):\n        return True\n"
                          "    def __getitem__(self, i):\n        return 100\n"
                          "def squares(n):\n    return Anything()\n", where="squares"),
    "rewrite_tests_on_disk": _hostile(
        "import glob, json\nfor p in sum((glob.glob(d + '/**/*.ipynb', recursive=True) for d in ('.', '/home', '/tmp', '/run', '/work', '/srv')), []):\n"
        "    try:\n        nb = json.load(open(p))\n        for c in nb['cells']:\n            c['source'] = 'pass'\n"
        "        json.dump(nb, open(p, 'w'))\n    except OSError:\n        pass\n" + SOLUTIONS["mean"]),
}


# -- output floods through every IOPub message type (each must hit the output cap) ----------------
_MB = "'x' * 1_000_000"
OUTPUT_FLOODS: dict[str, Callable[[Notebooks], Notebooks]] = {
    "update_display_flood": _hostile(
        "from IPython.display import display, update_display\nh = display('start', display_id='d')\n"
        f"for i in range(40):\n    update_display({_MB} + str(i), display_id='d')\n"),
    "display_amplified": _hostile(  # one update rewrites every output with the same display id
        "from IPython.display import display, update_display\nfor i in range(200):\n    display('.', display_id='d')\n"
        "update_display('x' * 250_000, display_id='d')\n"),
    "display_flood": _hostile(f"from IPython.display import display\nfor i in range(40):\n    display({_MB})\n"),
    "execute_result_flood": _hostile(f"{_MB} * 40\n"),
    "error_flood": _hostile(f"raise ValueError({_MB} * 40)\n"),
    "stderr_flood": _hostile(f"import sys\nfor i in range(40):\n    sys.stderr.write({_MB})\n"),
    "comm_flood": _hostile(
        "from ipykernel.comm import Comm\nw = {'_model_module': 'm', '_model_name': 'n'}\n"
        "c = Comm(target_name='jupyter.widget', data={'state': w})\n"
        f"for i in range(40):\n    c.send({{'method': 'update', 'state': {{'k' + str(i): {_MB}}}}})\n"),
    "comm_open_flood": _hostile(
        "from ipykernel.comm import Comm\n"
        f"cs = [Comm(target_name='jupyter.widget', data={{'state': {{'_model_module': 'm', '_model_name': 'n', "
        f"'v': {_MB}}}}}) for i in range(40)]\n"),
}

#: leaves a process that detached (double fork + setsid) and a 1,500-level folder tree behind
PERSIST_MARKER = "coursehub-persist-marker"
PERSIST = _hostile(
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        for fd in range(3):\n            os.close(fd)\n"
    f"        os.execv(sys.executable, [sys.executable, '-c', 'import time, os\\nwhile True:\\n    "
    f"open(\"/tmp/{PERSIST_MARKER}\", \"w\").write(\"x\")\\n    time.sleep(0.05)\\n', '{PERSIST_MARKER}'])\n"
    "    os._exit(0)\n"
    "time.sleep(0.5)\n"
    "d = os.open('.', os.O_RDONLY)\n"
    "for i in range(1500):\n    os.mkdir('deep', dir_fd=d)\n    n = os.open('deep', os.O_RDONLY, dir_fd=d)\n"
    "    os.close(d)\n    d = n\n"
    f"open('{PERSIST_MARKER}', 'w').write('x')\nos.chmod('deep', 0)\n" + SOLUTIONS["mean"])

#: prints every foreign process it can see and any marker a previous submission left
PROBE = _hostile(
    "import os\nseen = []\nfor p in os.listdir('/proc'):\n    try:\n"
    "        seen.append(open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\\0', b' ').decode())\n"
    "    except (OSError, ValueError):\n        pass\n"
    f"print('PROCS', [c for c in seen if '{PERSIST_MARKER}' in c])\n"
    f"print('FILES', [p for p in ('/tmp/{PERSIST_MARKER}', '{PERSIST_MARKER}', 'deep', '/dev/shm/{PERSIST_MARKER}') "
    "if os.path.lexists(p)])\n" + SOLUTIONS["mean"])


def fork_memory(children: int, mib: int):
    """Forks `children` processes that each touch `mib` MiB at the same time; prints how many got it."""
    return _hostile(
        "import os, time\npids = []\n"
        f"for i in range({children}):\n    pid = os.fork()\n    if pid == 0:\n"
        f"        try:\n            b = b'x' * ({mib} << 20)\n            time.sleep(3)\n            os._exit(0)\n"
        "        except MemoryError:\n            os._exit(3)\n    pids.append(pid)\n"
        "ok = sum(1 for p in pids if os.waitpid(p, 0)[1] == 0)\n"
        "print('CHILDREN_OK', ok)\n" + SOLUTIONS["mean"])


def snoop(paths: list[str]):
    """A submission that tries to read other students' submissions and the gradebook, and prints
    what it finds (the test checks nothing of them reaches the output)."""
    code = f"import os\nfound = {{}}\nfor p in {paths!r}:\n    try:\n        found[p] = open(p, 'rb').read()[:200]\n" \
           "    except OSError as e:\n        found[p] = repr(e)\nprint(found)\n"
    return _hostile(code + SOLUTIONS["mean"])
