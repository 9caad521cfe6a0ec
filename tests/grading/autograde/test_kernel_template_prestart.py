"""A kernel template started ahead (`kernel_template.prestart`, as `coursehub autograde` does before
its imports) goes to exactly one worker forked after it; the others start their own. The worker that
took it over cannot wait for it (it is not its child), so it must still tell at once whether it is
alive, replace it when it died, and nothing may be left running at the end."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess

import pytest

from coursehub.grading.sandbox import kernel_template

FORK = mp.get_context("fork")


@pytest.fixture
def as_root(monkeypatch):
    """The template is only started ahead as root; its protocol needs no privilege."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv(kernel_template.ENV, raising=False)
    monkeypatch.setattr(kernel_template, "_prestarted", None)
    monkeypatch.setattr(kernel_template, "_current", None)
    monkeypatch.setattr(kernel_template, "_released", [])
    yield
    kernel_template.release_prestarted(discard=True)
    kernel_template.reap_prestarted()


def _worker(conn, go) -> None:
    """What a pool worker does first: ask for this process's template and wait until it listens."""
    t = kernel_template.template(subprocess.Popen)
    t.wait_ready(60)
    conn.send((t.proc.pid, t.owner == os.getpid(), t.alive()))
    if not go.wait(60):
        return
    if t.owner != os.getpid():  # the parent killed the template this worker took over
        conn.send(t.alive())
        again = kernel_template.template(subprocess.Popen)
        again.wait_ready(60)
        conn.send((again.proc.pid, again.owner == os.getpid()))
    kernel_template.template(subprocess.Popen).close()


def test_a_prestarted_template_goes_to_one_worker_and_the_others_start_their_own(as_root):
    kernel_template.prestart()
    assert kernel_template._prestarted is not None
    ahead = kernel_template._prestarted[1].proc
    go = FORK.Event()
    pipes, workers = [], []
    for _ in range(3):
        ours, theirs = FORK.Pipe()
        p = FORK.Process(target=_worker, args=(theirs, go))
        p.start()
        pipes.append(ours)
        workers.append(p)
    kernel_template.release_prestarted()  # as GraderPool does once its workers are forked
    assert kernel_template._prestarted is None
    seen = []
    for conn in pipes:
        assert conn.poll(60), "a worker got no template"
        seen.append(conn.recv())
    took = [s for s in seen if s[0] == ahead.pid]
    assert len(took) == 1, seen
    assert took[0][1:] == (False, True)  # taken over (not its child), and alive
    others = [s for s in seen if s[0] != ahead.pid]
    assert len({s[0] for s in others}) == 2 and all(s[1:] == (True, True) for s in others)

    os.kill(ahead.pid, signal.SIGKILL)
    ahead.wait(30)  # this process started it: it reaps it
    go.set()
    taker = pipes[seen.index(took[0])]
    assert taker.poll(30), "alive() did not answer"  # it once waited out the socket's 120 s timeout
    assert taker.recv() is False
    assert taker.poll(60)
    new_pid, owned = taker.recv()
    assert owned and new_pid != ahead.pid
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    kernel_template.reap_prestarted()


def _worker_that_just_exits(conn) -> None:
    t = kernel_template.template(subprocess.Popen)
    t.wait_ready(60)
    conn.send(t.proc.pid)  # and exits without closing anything


def test_the_template_ends_by_itself_with_its_last_worker(as_root):
    """When the worker that took it over exits, the template sees its socket close and ends (exit
    status 0): the starting process's copy of the socket is really closed when it lets go, even
    while something still refers to the template object (its buffered reader holds the descriptor)."""
    kernel_template.prestart()
    held = kernel_template._prestarted[1]  # a reference kept all along, as a caller might
    ahead = held.proc
    ours, theirs = FORK.Pipe()
    p = FORK.Process(target=_worker_that_just_exits, args=(theirs,))
    p.start()
    kernel_template.release_prestarted()
    assert ours.poll(60) and ours.recv() == ahead.pid
    p.join(60)
    kernel_template.reap_prestarted(timeout=30)  # kills it (status -9) if it is still there after 30 s
    assert ahead.returncode == 0


def test_a_template_nobody_takes_is_stopped(as_root):
    kernel_template.prestart()
    ahead = kernel_template._prestarted[1].proc
    kernel_template.release_prestarted(discard=True)
    kernel_template.reap_prestarted(timeout=30)
    assert ahead.returncode is not None
    assert kernel_template._prestarted is None


@pytest.mark.parametrize("why", ["not root", "turned off"])
def test_no_template_is_started_ahead_where_none_would_be_used(monkeypatch, why):
    monkeypatch.setattr(kernel_template, "_prestarted", None)
    if why == "not root":
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        monkeypatch.setenv(kernel_template.ENV, "0")
    kernel_template.prestart()
    assert kernel_template._prestarted is None
