"""Sandbox uids are unique on the host, across processes (runs, courses), and never handed out while
a process of that uid still runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from coursehub.grading.sandbox import uids

HOLD = ("import sys\nfrom coursehub.grading.sandbox import uids\n"
        "ls = [uids.acquire(preferred=0) for _ in range(int(sys.argv[1]))]\n"
        "print(' '.join(str(x.uid) for x in ls), flush=True)\nsys.stdin.read()\n")


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEHUB_SANDBOX_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


def _holder(n: int) -> tuple[subprocess.Popen, set[int]]:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ))
    return p, {int(x) for x in p.stdout.readline().split()}


def test_two_runs_asking_for_the_same_slot_get_different_uids(lock_dir):
    other, theirs = _holder(3)
    try:
        mine = [uids.acquire(preferred=0) for _ in range(3)]
        assert len(theirs) == 3 and not theirs & {m.uid for m in mine}
        assert len({m.uid for m in mine}) == 3
    finally:
        other.stdin.close()
        other.wait()
    for m in mine:
        m.release()


def test_a_killed_run_gives_its_uids_back(lock_dir):
    other, theirs = _holder(1)
    other.kill()
    other.wait()
    again = uids.acquire(preferred=min(theirs) - uids.BASE_UID)
    assert again.uid in theirs
    again.release()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to run as another uid")
def test_a_uid_that_still_has_processes_is_skipped(lock_dir):
    uid = uids.BASE_UID + 997
    squatter = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not uids.uid_has_processes(uid):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lease = uids.acquire(preferred=997)
        assert lease.uid != uid
        lease.release()
    finally:
        squatter.kill()
        squatter.wait()
