"""The exchange client's small parts (issue 13): timeouts and retries, one-sentence errors, the
late warning and receipt texts, and course.yaml's deadlines in nbgrader's gradebook."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from nbgrader.api import Gradebook
from nbgrader.exchange import ExchangeError

from coursehub.grading.deadlines import deadline_info, write_deadlines
from coursehub.grading.exchange.base import UNAVAILABLE, CoursehubExchange, ServiceUnavailable, retry_policy
from coursehub.grading.exchange.lateness import late_notice, policy_text, receipt
from coursehub.grading.exchange.panel import failure
from coursehub.platform.courses import Course


@contextmanager
def stub_service(statuses: list[tuple[int, dict]]) -> Iterator[tuple[str, list[str]]]:
    """Answers with `statuses` in turn (then 200), recording each request's path."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.path)
            status, headers = statuses.pop(0) if statuses else (200, {})
            body = b'{"error": "stub says no"}' if status >= 400 else b"[]"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/grading/", seen
    finally:
        server.shutdown()
        server.server_close()


def exchange(url: str, **traits: object) -> CoursehubExchange:
    return CoursehubExchange(service_url=url, api_token="t", **traits)


def test_retries_503_with_retry_after_then_succeeds():
    with stub_service([(503, {"Retry-After": "0"}), (502, {})]) as (url, seen):
        r = exchange(url).api("GET", "releases", retry=True)
    assert r.status_code == 200 and len(seen) == 3


def test_no_retry_unless_asked_and_unavailable_is_one_sentence():
    with stub_service([(503, {})]) as (url, seen):
        with pytest.raises(ServiceUnavailable) as err:
            exchange(url).api("GET", "releases")
    assert len(seen) == 1 and str(err.value) == UNAVAILABLE


def test_service_refusal_is_the_services_sentence():
    with stub_service([(413, {})]) as (url, _):
        with pytest.raises(ExchangeError, match="^stub says no$"):
            exchange(url).api("GET", "releases", retry=True)


def test_a_hung_service_fails_fast_instead_of_waiting_minutes():
    with socket.socket() as hung:  # accepts connections (the kernel does), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/services/grading/"
        with pytest.raises(ServiceUnavailable):
            exchange(url, read_timeout=0.5).api("GET", "releases", retry=True)


def test_retry_policy_honours_retry_after_but_caps_it():
    policy = retry_policy(3)
    assert policy.respect_retry_after_header and policy.total == 2 and policy.read == 0
    assert set(policy.status_forcelist) == {502, 503, 504}

    class Response:
        headers = {"Retry-After": "3600"}

        def getheader(self, name: str) -> str | None:
            return self.headers.get(name)

    assert policy.get_retry_after(Response()) == policy.max_wait


def test_failures_are_one_sentence_without_traceback():
    assert failure(ExchangeError("'data.csv' is 23.8 MiB;\n  the limit per file is 20.0 MiB")) == \
        "'data.csv' is 23.8 MiB; the limit per file is 20.0 MiB"
    text = failure(KeyError("x"))
    assert "Traceback" not in text and "KeyError" in text and "\n" not in text


NOW = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)


def deadline(due: dt.datetime, **policy: object) -> dict:
    return {"due_at": due.isoformat(), "now": NOW.isoformat(), "grace_minutes": 15,
            "penalty_percent_per_day": 10, "max_late_days": None, **policy}


def test_late_notice_uses_the_service_clock_and_grace():
    assert late_notice(deadline(NOW - dt.timedelta(hours=3, minutes=2))).text == \
        "The deadline passed 3 h ago; this will be late (\u221210 %/day)."
    assert late_notice(deadline(NOW - dt.timedelta(minutes=10))) is None  # within grace
    assert late_notice(deadline(NOW + dt.timedelta(days=1))) is None
    assert late_notice(None) is None
    assert "2 days" in late_notice(deadline(NOW - dt.timedelta(days=2, hours=1))).text
    assert policy_text({"penalty_percent_per_day": 0}) == "no penalty"
    assert policy_text({"penalty_percent_per_day": 10, "max_late_days": 5}) == "\u221210 %/day, zero after 5 days"


def test_receipt_says_server_time_and_on_time_or_late():
    base = {"assignment_id": "ps1", "submitted_at": "2026-12-04T14:03:12.5+00:00", "due_at": "x"}
    assert receipt(base | {"late": False}) == "Submitted ps1 at 2026-12-04 14:03:12 UTC (grading service time): on time."
    assert receipt(base | {"late": True, "seconds_late": 7300}).endswith("late by 2 h.")
    assert receipt(base | {"late": False, "due_at": None}).endswith("received (this assignment has no deadline).")


def make_course() -> Course:
    return Course(id="c1", title="C1", assignments=[
        {"id": "ps1", "due": "2026-12-18T23:59:00+01:00"}, {"id": "ps2"}],
        late_policy={"grace_minutes": 5, "penalty_percent_per_day": 10},
        extensions=[{"student": "bob", "assignment": "ps1", "due": "2026-12-20T23:59:00+01:00"}])


def test_deadline_info_is_the_students_own():
    course = make_course()
    assert deadline_info(course, "ps1", "bob", NOW)["due_at"] == "2026-12-20T23:59:00+01:00"
    info = deadline_info(course, "ps1", "alice", NOW)
    assert info["due_at"] == "2026-12-18T23:59:00+01:00" and info["penalty_percent_per_day"] == 10
    assert deadline_info(course, "ps2", "alice", NOW) is None


def test_course_deadlines_are_written_to_the_gradebook(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    course = make_course()
    assert write_deadlines(url, course) == 1
    with Gradebook(url, "c1") as gb:
        assert gb.find_assignment("ps1").duedate == dt.datetime(2026, 12, 18, 22, 59)
        gb.update_or_create_student("bob")
        gb.update_or_create_submission("ps1", "bob")
    assert write_deadlines(url, course) == 1  # bob's extension, now that he has a submission
    with Gradebook(url, "c1") as gb:
        sub = gb.find_submission("ps1", "bob")
        assert sub.extension == dt.timedelta(days=2) and sub.duedate == dt.datetime(2026, 12, 20, 22, 59)
    assert write_deadlines(url, course) == 0


def test_user_servers_get_the_panel_and_staff_may_frame_themselves():
    from coursehub.platform.userconfig import server_app_config

    student, staff = server_app_config(staff=False), server_app_config(staff=True)
    for config in (student, staff):
        assert config["jpserver_extensions"]["coursehub.grading.exchange.panel"] is True
        assert config["jpserver_extensions"]["nbgrader.server_extensions.assignment_list"] is False
    assert "tornado_settings" not in student  # JupyterHub's frame-ancestors 'none' stays for students
    assert staff["tornado_settings"]["headers"]["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert staff["jpserver_extensions"]["nbgrader.server_extensions.formgrader"] is True
    assert student["jpserver_extensions"]["nbgrader.server_extensions.formgrader"] is False


def test_lab_plugin_is_a_loadable_federated_extension(tmp_path):
    import json

    from jupyterlab_server.config import get_federated_extensions

    from coursehub.grading.exchange import labpanel

    labpanel.write_extension(str(tmp_path))
    found = get_federated_extensions([str(tmp_path)])[labpanel.NAME]
    assert found["jupyterlab"]["_build"] == {"load": labpanel.ENTRY, "extension": "./extension"}
    entry = tmp_path / "@coursehub" / "assignments" / labpanel.ENTRY
    assert "__esModule: true" in entry.read_text()  # else JupyterLab takes the module for one plugin
    assert json.loads((entry.parent.parent / "package.json").read_text())["name"] == labpanel.NAME


def test_formgrader_links_are_nbgraders_own_plus_the_base_url():
    from coursehub.grading.exchange.formgrader_links import PREFIX_LINKS, stock_utils_js

    assert "var linkTo = function" in stock_utils_js() and "linkTo = (function (stockLinkTo)" in PREFIX_LINKS


def _released(language_info: object = None, kernel: str = "python3") -> bytes:
    import nbformat

    cell = nbformat.v4.new_code_cell("x = 1", id="c1")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "q1", "points": 1, "solution": False, "locked": True,
                                 "checksum": "abc", "schema_version": 3}
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    if language_info is not None:
        nb.metadata["language_info"] = language_info
    return nbformat.writes(nb).encode()


def test_a_fetched_notebook_carries_the_language_info_its_kernel_reports():
    """JupyterLab marks a notebook modified when the kernel's language_info differs from the file's:
    the fetch fills it as the kernel will, and leaves the cells (nbgrader's checksums) alone."""
    import json

    from ipykernel.ipkernel import IPythonKernel

    from coursehub.grading.exchange.fetch import _as_the_kernel_fills_it

    released = _released({"name": "python"})  # what nbgrader's release keeps
    fetched = json.loads(_as_the_kernel_fills_it(released))
    assert fetched["metadata"]["language_info"] == IPythonKernel.language_info
    before = json.loads(released)
    assert fetched["cells"] == before["cells"] and fetched["metadata"]["kernelspec"] == before["metadata"]["kernelspec"]
    # anything else is written exactly as released
    full = _released({"name": "python", "version": "3.9.1", "mimetype": "text/x-python"})
    for content in (full, _released({"name": "R"}), _released(), _released("not a dict"), b"{broken", b"[]"):
        assert _as_the_kernel_fills_it(content) == content


@pytest.mark.parametrize(("stamp", "shown"), [
    ("2026-12-04 15:22:39.123456 UTC", "2026-12-04 15:22:39 UTC"),  # nbgrader's format
    ("2026-12-04 15:22:39 UTC", "2026-12-04 15:22:39 UTC"),
    ("2026-12-04T16:22:39.5+01:00", "2026-12-04 15:22:39 UTC"),
    ("not a time", "not a time"), ("", ""),
])
def test_submission_times_are_shown_to_the_second(stamp, shown):
    from coursehub.grading.exchange.lateness import shown_time

    assert shown_time(stamp) == shown
