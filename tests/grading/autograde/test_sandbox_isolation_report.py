"""The start-up statement of which limits are per submission and which per process, and the
per-submission cgroup itself (where this host has one)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from coursehub.grading.sandbox import cgroups, isolation
from coursehub.grading.sandbox.limits import KernelLimits


def test_without_cgroups_it_warns_that_limits_are_per_process(monkeypatch):
    monkeypatch.setattr(cgroups, "detect", lambda: None)
    text, strong = isolation.describe(KernelLimits())
    assert not strong
    assert text.startswith("WARNING") and "PER PROCESS ONLY" in text and "memory" in text


def test_with_cgroups_memory_and_processes_are_per_submission(monkeypatch):
    backend = cgroups.Backend("v2", {"memory": "/x", "pids": "/x"})
    monkeypatch.setattr(cgroups, "detect", lambda: backend)
    text, strong = isolation.describe(KernelLimits(memory_bytes=1 << 30, processes=64))
    assert strong
    per_sub, per_proc = text.split("PER PROCESS:")
    assert "PER SUBMISSION" in per_sub and "memory 1408 MiB" in per_sub and "processes+threads 64" in per_sub
    assert "address space" in per_proc and "CPU" in per_proc


def test_the_cli_says_it_at_start(tmp_path):
    (tmp_path / "c").mkdir()
    run = subprocess.run([sys.executable, "-m", "coursehub.cli", "autograde", "ps1", "--course-dir", str(tmp_path / "c"),
                          "--no-progress"], capture_output=True, text=True)
    assert "no such assignment source folder" in run.stderr  # fails early, before the statement
    assert "PER PROCESS" not in run.stdout


@pytest.mark.skipif(cgroups.detect() is None, reason="no usable cgroup memory/pids controllers on this host")
def test_a_submission_cgroup_limits_all_its_processes_together():
    group = cgroups.SubmissionCgroup(cgroups.detect(), f"test-{os.getpid()}", 64 << 20, 8)
    try:
        hog = ("import os, time\npids = []\nfor i in range(3):\n    p = os.fork()\n    if p == 0:\n"
               "        b = b'x' * (40 << 20)\n        time.sleep(2)\n        os._exit(0)\n    pids.append(p)\n"
               "print(sum(os.waitpid(p, 0)[1] == 0 for p in pids))\n")
        run = subprocess.run([sys.executable, "-c", hog], preexec_fn=group.attach_self, capture_output=True, text=True)
        survivors = int(run.stdout.strip() or 0)
        assert survivors < 3  # 3 x 40 MiB do not fit 64 MiB together, though each fits alone
        assert group.oom_kills() >= 1
    finally:
        assert group.remove()
