"""The exchange as people meet it inside their Jupyter server (issue 13): a paused grading service
never freezes the server; errors are one sentence; a late submit is announced and receipted; the
formgrader works inside the instructor's Lab and standalone.

Real processes: the grading service (with a FakeHub) and JupyterLab servers configured exactly as
the platform configures user servers (platform/userconfig.py's role config on JUPYTER_CONFIG_PATH).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import requests
from support.browser import chromium_available, screenshot
from support.exchange import make_notebook, write_course
from support.fakehub import FakeHub
from support.grading import GradingService, running_service
from support.net import free_port, wait_until
from support.venv import venv_path

from coursehub.grading.archive import pack
from coursehub.grading.exchange import FACTORY_CLASSES
from coursehub.platform.userconfig import server_app_config

COURSE = "ux101"
def browser(fn):  # noqa: ANN001, ANN201 - a real chromium test
    skip = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium (./scripts/setup --test)")
    return pytest.mark.browser(skip(fn))
# nbgrader's gradebook runs the `alembic` command: the virtualenv's bin must be on PATH.
os.environ["PATH"] = venv_path()


@dataclass
class UserServer:
    url: str  # ends with /
    headers: dict
    proc: subprocess.Popen
    home: Path
    log_file: Path

    def get(self, path: str, **kw: object) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, **{"timeout": 60, **kw})

    def post(self, path: str, **kw: object) -> requests.Response:
        return requests.post(self.url + path, headers=self.headers, **{"timeout": 120, **kw})

    def panel(self, action: str, assignment: str) -> dict:
        r = self.post(f"assignments/{action}", data={"course_id": COURSE, "assignment_id": assignment})
        assert r.status_code == 200, r.text
        return r.json()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@contextmanager
def user_server(tmp: Path, service_url: str, hub_token: str, *, staff: bool = False) -> Iterator[UserServer]:
    """JupyterLab with a role's config as the platform writes it, and the coursehub exchange."""
    config = tmp / "config"
    home = tmp / "home"
    config.mkdir(parents=True)
    home.mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": server_app_config(staff=staff)}))
    lines = ["c = get_config()  # noqa"]
    lines += [f"c.ExchangeFactory.{k} = {v!r}" for k, v in FACTORY_CLASSES.items()]
    lines += [f"c.CoursehubExchange.service_url = {service_url!r}", "c.CoursehubExchange.path_includes_course = True",
              f"c.CourseDirectory.course_id = {COURSE!r}"]
    if staff:
        course_dir = home / "courses" / COURSE
        (course_dir / "source").mkdir(parents=True)
        lines.append(f"c.CourseDirectory.root = {str(course_dir)!r}")
    (config / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_PATH": str(config),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTERHUB_API_TOKEN": hub_token,
           "COURSEHUB_COURSE": COURSE}  # as the course profile (platform/profiles.py) sets it
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_URL", "JUPYTER_RUNTIME_DIR"):
        env.pop(name, None)
    log_file = tmp / "server.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={home}"],
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = UserServer(f"http://127.0.0.1:{port}/", {"Authorization": f"token {token}"}, proc, home, log_file)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited:\n{server.log()[-3000:]}")
        return server.get("api/status", timeout=2).ok

    try:
        wait_until(up, timeout=90, what="jupyter lab")
        yield server
    except BaseException:
        print(f"--- user server log (tail) ---\n{server.log()[-5000:]}")
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# --- the course, the service and its users -----------------------------------------------------
LIMITS = {"max_file_bytes": 300_000, "max_submission_bytes": 600_000}
LATE_BY = dt.timedelta(hours=3, minutes=5)


@pytest.fixture(scope="module")
def courses_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("courses")
    due = (dt.datetime.now(dt.UTC) - LATE_BY).replace(microsecond=0).isoformat()
    write_course(root, COURSE, {"instructors": ["inst"]},
                 [{"id": "open1"}, {"id": "big1"}, {"id": "big2"}, {"id": "fb1"}, {"id": "late1", "due": due},
                  {"id": "late2", "due": due},
                  {"id": "ext1", "due": due}],
                 late_policy={"grace_minutes": 15, "penalty_percent_per_day": 10},
                 extensions=[{"student": "alice", "assignment": "ext1", "due": "2099-01-01T00:00:00+00:00"}])
    return root


@pytest.fixture(scope="module")
def fakehub() -> Iterator[FakeHub]:
    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def tokens(fakehub: FakeHub) -> dict[str, str]:
    return {"inst": fakehub.add_user("inst", [f"course:{COURSE}:instructor"]),
            "alice": fakehub.add_user("alice", [f"course:{COURSE}:student"])}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, courses_dir: Path, fakehub: FakeHub,
            tokens: dict) -> Iterator[GradingService]:
    with running_service(tmp_path_factory.mktemp("svc"), courses_dir, fakehub, **LIMITS) as svc:
        for assignment in ("open1", "big1", "big2", "fb1", "late1", "late2", "ext1"):
            r = requests.put(f"{svc.url}api/courses/{COURSE}/assignments/{assignment}/release",
                             data=pack({"p1.ipynb": make_notebook().encode()}), timeout=30,
                             headers={"Authorization": f"token {tokens['inst']}"})
            assert r.status_code == 201, r.text
        yield svc


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory, service: GradingService, tokens: dict) -> Iterator[UserServer]:
    with user_server(tmp_path_factory.mktemp("alice"), service.url, tokens["alice"]) as server:
        yield server


def one_sentence(text: str) -> None:
    assert "Traceback" not in text and "\n" not in text.strip() and "File \"" not in text, text
    assert len(text) < 300, text


# --- a paused grading service ---------------------------------------------------------------------
def test_paused_service_never_freezes_the_users_server(tmp_path, service, tokens):
    with user_server(tmp_path, service.url, tokens["alice"]) as server:
        listed = server.get("assignments", params={"course_id": COURSE}).json()
        assert listed["success"], listed
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x = 1")]
        answers: dict = {}

        def list_assignments() -> None:
            answers["list"] = server.get("assignments", params={"course_id": COURSE}, timeout=120).json()

        os.kill(service.proc.pid, signal.SIGSTOP)
        try:
            lister = threading.Thread(target=list_assignments)
            lister.start()
            time.sleep(0.5)  # the panel's request is now waiting for the paused service
            # The bar: status and saving answer within 2 s while the exchange hangs. The
            # best of three tries counts (a shared CI machine can stall one), each capped at 2 s.
            for what in ("status", "save"):
                best = None
                for attempt in range(3):
                    started = time.monotonic()
                    try:
                        if what == "status":
                            r = server.get("api/status", timeout=2)
                        else:
                            r = requests.put(f"{server.url}api/contents/notes-{attempt}.ipynb", headers=server.headers,
                                             json={"type": "notebook", "format": "json", "content": nb}, timeout=2)
                    except requests.Timeout:
                        continue
                    assert r.status_code in (200, 201), r.text
                    best = min(best or 99.0, time.monotonic() - started)
                assert best is not None and best < 2.0, f"{what} did not answer within 2 s while the service hung"
            lister.join(60)
            assert not lister.is_alive(), "the Assignments panel's list never answered"
            assert answers["list"]["success"] is False
            assert answers["list"]["value"].startswith("Assignments are temporarily unavailable")
            one_sentence(answers["list"]["value"])
        finally:
            os.kill(service.proc.pid, signal.SIGCONT)
        # Once the service answers again, so does the panel.
        wait_until(lambda: server.get("assignments", params={"course_id": COURSE}).json()["success"],
                   timeout=60, what="the panel to recover")


# --- errors, late warning, receipt ----------------------------------------------------------------
def test_panel_errors_are_one_readable_sentence(student):
    out = student.panel("fetch", "nosuch")
    assert out["success"] is False
    one_sentence(out["value"])
    assert "nosuch" in out["value"] and "not released" in out["value"]

    assert student.panel("fetch", "big1")["success"]
    folder = student.home / COURSE / "big1"
    (folder / "data.csv").write_bytes(b"1,2,3\n" * 70_000)  # 420 kB: over the service's 300 kB per file
    out = student.panel("submit", "big1")
    assert out["success"] is False
    one_sentence(out["value"])
    assert out["value"].startswith("'data.csv' is ") and "the limit per file is" in out["value"]


def test_late_submit_is_announced_then_receipted(student):
    assert student.panel("fetch", "late1")["success"]
    first = student.panel("submit", "late1")
    assert first["success"] is False and first.get("late") is True
    one_sentence(first["value"])
    assert first["value"].startswith("The deadline passed 3 h ago; this will be late (\u221210 %/day).")
    listed = student.get("assignments", params={"course_id": COURSE}).json()["value"]
    assert not [a for a in listed if a["assignment_id"] == "late1" and a["status"] == "submitted"]

    second = student.panel("submit", "late1")  # pressed again: submitted, late
    assert second["success"] is True, second
    assert second["receipt"].startswith("Submitted late1 at ") and "(grading service time): late by 3 h." in \
        second["receipt"]
    assert [a for a in second["value"] if a["assignment_id"] == "late1" and a["status"] == "submitted"]


def test_on_time_submit_has_no_warning_and_an_on_time_receipt(student):
    assert student.panel("fetch", "ext1")["success"]  # alice's extension runs to 2099
    out = student.panel("submit", "ext1")
    assert out["success"] is True, out
    assert out["receipt"].endswith("(grading service time): on time.")
    assert student.panel("fetch", "open1")["success"]
    out = student.panel("submit", "open1")
    assert out["success"] is True and "no deadline" in out["receipt"]


def test_fetch_feedback_before_there_is_any_says_so(student):
    assert student.panel("fetch", "fb1")["success"]
    assert student.panel("submit", "fb1")["success"]
    out = student.panel("fetch_feedback", "fb1")
    assert out == {"success": False, "value": "There is no feedback for fb1 yet; it appears here when your "
                                              "course staff return it."}


# --- in the browser: the Assignments panel as students see it ---------------------------------
def open_assignments(page, server: UserServer) -> object:  # noqa: ANN001
    token = server.headers["Authorization"].split()[1]
    page.goto(f"{server.url}lab?token={token}")
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").first.click()
    return page.locator("#nbgrader-assignment-list, .nbgrader-AssignmentList, #assignments").first


@browser
def test_browser_oversized_file_is_one_sentence_and_late_submit_asks_first(student, service, tokens, tmp_path):
    from support.browser import browser_page

    for assignment in ("big2", "late2"):
        assert student.panel("fetch", assignment)["success"]
    (student.home / COURSE / "big2" / "data.csv").write_bytes(b"1,2,3\n" * 70_000)
    with browser_page(timeout_ms=120_000) as page:
        open_assignments(page, student)
        row = page.locator(".list_item", has_text="big2").first
        row.locator("button", has_text="Submit").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator(".coursehub-exchange-message").wait_for()
        assert dialog.locator(".jp-Dialog-header").inner_text().strip() == "Not submitted"
        text = dialog.locator(".jp-Dialog-content").inner_text()
        assert "Invalid Submission" not in text and "Traceback" not in text
        message = dialog.locator(".coursehub-exchange-message").inner_text()
        one_sentence(message)
        assert message.startswith("'data.csv' is ") and "the limit per file is" in message
        screenshot(page, tmp_path, "students", "submit-oversized-file.png")
        dialog.locator("button", has_text="Ok").click()

        row = page.locator(".list_item", has_text="late2").first
        row.locator("button", has_text="Submit").click()
        dialog.locator(".coursehub-exchange-message").wait_for()
        assert dialog.locator(".jp-Dialog-header").inner_text().strip() == "Submit after the deadline?"
        assert dialog.locator(".coursehub-exchange-message").inner_text().startswith(
            "The deadline passed 3 h ago; this will be late (\u221210 %/day).")
        screenshot(page, tmp_path, "students", "submit-late-warning.png")
        dialog.locator("button", has_text="Ok").click()
        page.locator(".list_item", has_text="late2").first.locator("button", has_text="Submit").click()
        toast = page.locator(".Toastify__toast", has_text="Submitted late2 at")
        toast.wait_for()
        assert "late by 3 h" in toast.inner_text()
        page.wait_for_timeout(1000)  # let the notification finish sliding in, for the screenshot
        screenshot(page, tmp_path, "students", "submit-receipt.png")

        # Help -> "Course page: ux101" opens the student course page in a new tab. The hub's proxy
        # would serve /services/grading/ on Lab's origin; here a route forwards it to the service.
        def proxy(route) -> None:  # noqa: ANN001
            rest = route.request.url.split("/services/grading/", 1)[1]
            route.fulfill(response=route.fetch(url=service.url + rest,
                                               headers={"Authorization": f"token {tokens['alice']}"}))

        page.context.route(f"{student.url}services/grading/**", proxy)
        page.locator(".lm-MenuBar-itemLabel", has_text="Help").first.click()
        item = page.locator(".lm-Menu-item", has_text=f"Course page: {COURSE}")
        item.wait_for()
        screenshot(page, tmp_path, "students", "lab-course-page-menu.png")
        with page.context.expect_page() as opened:
            item.click()
        course_page = opened.value
        course_page.wait_for_load_state()
        assert course_page.url == f"{student.url}services/grading/course/{COURSE}/"
        late2 = course_page.locator('article[data-assignment="late2"]')
        assert late2.get_attribute("data-status") == "submitted"
        assert "late by 3 h" in late2.locator(".status").inner_text()
        page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
        in_file_menu = page.locator(".lm-Menu-item", has_text=f"Course page: {COURSE}")
        in_file_menu.wait_for()  # only the open menu is in the page: this one is in File
        assert in_file_menu.count() == 1
