"""A grade never depends on the machine: a failure that is not the student's (a kernel that did not
start, output that did not arrive in time on a loaded machine) is retried in a fresh sandbox and, if
it persists, reported as a failure: never applied as a score."""

from __future__ import annotations

import asyncio

from traitlets.config import Config

from coursehub.grading.autograde import execute
from coursehub.grading.autograde.grader import INFRA_RETRIES, Grader
from coursehub.grading.sandbox import kernel as sandbox_kernel
from coursehub.grading.sandbox.limits import KernelLimits

LIMITS = KernelLimits(cell_timeout_seconds=20, submission_timeout_seconds=60)


def _grade(course, config=None):
    index = course.source_index("ps1")
    with Grader(index, config or course.config, LIMITS, slot=70) as g:
        return g.grade(course.job("alice", "ps1", index))


def test_a_kernel_that_did_not_start_is_retried_not_scored(alice_course, monkeypatch):
    real = sandbox_kernel.SandboxKernelClient.wait_for_ready
    calls = []

    async def flaky(self, timeout=None):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the sandboxed kernel did not become ready in time")
        return await real(self, timeout)

    monkeypatch.setattr(sandbox_kernel.SandboxKernelClient, "wait_for_ready", flaky)
    result = _grade(alice_course)
    assert len(calls) >= 3  # part1 failed once, then part1 and part2 in a fresh sandbox
    assert result.status == "graded" and result.score() == 7.0, (result.status, result.error, result.reasons)


def test_output_late_after_the_reply_is_retried_not_scored(alice_course, monkeypatch):
    """nbclient gives up waiting for a cell's output `iopub_timeout` after its reply: on a loaded
    machine that is the machine, not the student."""
    real = execute.SandboxExecute._async_poll_output_msg
    instances = []

    async def late(self, parent_msg_id, cell, cell_index):
        if not instances or instances[0] is self:
            instances.append(self)
            await asyncio.sleep(3)  # the first run's output arrives late
        return await real(self, parent_msg_id, cell, cell_index)

    monkeypatch.setattr(execute.SandboxExecute, "_async_poll_output_msg", late)
    config = Config(alice_course.config)
    config.Execute.iopub_timeout = 1
    result = _grade(alice_course, config)
    assert instances  # the delay really happened
    assert result.status == "graded" and result.score() == 7.0, (result.status, result.error, result.reasons)


def test_a_failure_that_persists_is_reported_never_scored(alice_course, monkeypatch):
    async def never(self, timeout=None):
        raise RuntimeError("the sandboxed kernel did not become ready in time")

    monkeypatch.setattr(sandbox_kernel.SandboxKernelClient, "wait_for_ready", never)
    result = _grade(alice_course)
    assert result.status == "failed" and result.notebooks == []
    assert "infrastructure failure" in result.error and f"{1 + INFRA_RETRIES} times" in result.error
