"""The grading service, the textbook service and the queue worker start, log and stop the same way
(coursehub.platform.service_runner)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from coursehub.grading.queue import worker as worker_mod
from coursehub.grading.service.__main__ import main as grading_main
from coursehub.platform import service_runner
from coursehub.platform.textbook.service import main as textbook_main

MAINS = [grading_main, textbook_main, worker_mod.main]


@pytest.mark.parametrize("main", MAINS)
def test_the_same_flags(main, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--settings" in out and "--log-level" in out


@pytest.mark.parametrize("main", MAINS)
def test_bad_settings_are_one_clear_line(main, tmp_path, capsys):
    bad = tmp_path / "settings.yaml"
    bad.write_text("grading:\n  no_such_key: 1\n")
    assert main(["--settings", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_key" in err


def test_sigterm_stops_a_threaded_and_an_async_service():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def threaded(args, settings, stop):
        os.kill(os.getpid(), signal.SIGTERM)  # as the hub or the kubelet would
        seen.append(stop.wait(30))
        return 0

    assert service_runner.run([], service_runner.parser("t", "t"), threaded) == 0

    def asynchronous(args, settings, stop):
        async def serve():
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)
            await stop.wait_async()
            seen.append(stop.is_set())

        asyncio.run(serve())
        return 3

    assert service_runner.run([], service_runner.parser("t", "t"), asynchronous) == 3
    assert seen == [True, True]
    assert signal.getsignal(signal.SIGTERM) == before  # the process's own handlers are back


def test_the_worker_finishes_on_sigterm(tmp_path, monkeypatch):
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {tmp_path}\n")
    ran = []
    real_run = worker_mod.QueueWorker.run

    def run(self, max_idle=None):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the worker waits for jobs
        real_run(self, max_idle=None)  # without a stop this would wait for jobs forever
        ran.append(self.stop.is_set())

    monkeypatch.setattr(worker_mod.QueueWorker, "run", run)
    monkeypatch.setattr("coursehub.grading.sandbox.bwrap.check", lambda: "")  # no sandbox is started here
    assert worker_mod.main(["--settings", str(settings), "--db-url", f"sqlite:///{tmp_path / 'q.sqlite'}",
                            "--poll-seconds", "0.05"]) == 0
    assert ran == [True]
