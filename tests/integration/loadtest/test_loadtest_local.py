"""`coursehub loadtest` against a real local platform (hub, proxy, grading service, local LMS):
small runs, counts only (tests never assert timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.hub import running_hub
from support.net import wait_until

SETTINGS = {"auth": {"dev_login": False, "lti": {"local_lms": True}}, "textbook": {"enabled": False}}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("loadtest"), settings=SETTINGS, timeout=180) as hub:
        yield hub


def loadtest(hub, *argv: str, admin: bool = False) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if k != "COURSEHUB_ADMIN_TOKEN"}
    if admin:
        env["COURSEHUB_ADMIN_TOKEN"] = hub.token
    proc = subprocess.run([sys.executable, "-m", "coursehub.cli", "loadtest", *argv, "--settings",
                           str(hub.settings_file), "--json", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize(("path", "first_contact"), [("direct", "launch"), ("through-proxy", "deadline")])
def test_deadline_reads_every_submission_back(hub, path, first_contact):
    """Straight to the grading service as the user servers submit (the default), or through the proxy;
    the servers met the service at launch (the default: the rush waits until those answers are out
    of date), or the rush is the first contact."""
    extra = ["--through-proxy"] if path == "through-proxy" else []
    rc, report = loadtest(hub, "deadline", "--students", "5", "--over", "2s", "--size", "20KB", *extra,
                          "--first-contact", first_contact, admin=True)
    assert rc == 0, report
    assert (report["requested"], report["ok"], report["failed"]) == (5, 5, 0)
    assert (report["stored"], report["acknowledged"], report["lost"], report["duplicated"]) == (5, 5, 0, 0)
    assert report["seconds"]["p50"] is not None
    start, end = report["window"]  # the rush on the wall clock, for per-process CPU (benchmarks/process_cpu.py)
    assert start < end and abs((end - start) - report["wall_seconds"]) < 2.0
    assert any("removed 6 of 6 test user(s)" in n for n in report["notes"])  # 5 students + the instructor
    direct = [n for n in report["notes"] if "straight to the grading service at http://127.0.0.1:" in n]
    assert len(direct) == (1 if path == "direct" else 0), report["notes"]
    met = [n for n in report["notes"] if "met the grading service before the rush" in n]
    assert len(met) == (1 if first_contact == "launch" else 0), report["notes"]
    assert 0 < report["throughput_per_second"] <= 5 / 2 * 1.5  # about the offered 2.5/s, never far above


def test_lecture_start_reaches_a_kernel_and_stops_the_servers(hub):
    rc, report = loadtest(hub, "lecture-start", "--users", "2")
    assert rc == 0, report
    assert (report["requested"], report["ok"], report["failed"], report["failures"]) == (2, 2, 0, {})
    assert set(report["stages"]) == {"launch", "open", "kernel"}
    assert any("stopped 2 server(s)" in n for n in report["notes"])
    wait_until(lambda: hub.api("GET", "/users", params={"state": "active"}).json() == [], timeout=60,
               what="the test's servers to stop")


def test_another_host_is_refused_without_an_admin_token(hub):
    env = {k: v for k, v in os.environ.items() if k != "COURSEHUB_ADMIN_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "coursehub.cli", "loadtest", "deadline", "--students", "1",
                           "--target", "http://192.0.2.1:8000"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "admin token" in proc.stderr
