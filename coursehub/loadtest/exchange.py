"""The grading service's exchange API as the load test uses it, with real hub tokens: release (as
the test instructor), submit (as each student, retried with the same upload id as the nbgrader
plugin does), and reading the submissions back to count lost and duplicated ones."""

from __future__ import annotations

import json
import random
import secrets
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from pathlib import Path
from urllib.parse import urlsplit

import requests

from .hubclient import StepFailed

SCOPE = "access:services!service=grading"


class Exchange:
    def __init__(self, hub_url: str, course_id: str, assignment_id: str, service: str = "grading",
                 service_url: str | None = None):
        """Through the hub's proxy (`hub_url`), or straight to the service at `service_url` (its
        own address, ending in /services/<name>/), as the user servers' exchange plugin goes."""
        root = service_url.rstrip("/") if service_url else f"{hub_url.rstrip('/')}/services/{service}"
        self.base = f"{root}/api"
        self.course_id = course_id
        self.assignment_id = assignment_id

    @property
    def _assignment(self) -> str:
        return f"{self.base}/courses/{self.course_id}/assignments/{self.assignment_id}"

    def limits(self, token: str) -> dict:
        r = requests.get(f"{self.base}/courses", headers=_auth(token), timeout=30)
        _check(r, "grading service: list courses")
        courses = {c["course_id"]: c["roles"] for c in r.json()["courses"]}
        if self.course_id not in courses:
            raise StepFailed(f"the test instructor is not in {self.course_id} on the grading service")
        return r.json()["limits"]

    def is_released(self, token: str) -> bool:
        r = requests.get(f"{self.base}/releases", params={"course": self.course_id, "assignment": self.assignment_id},
                         headers=_auth(token), timeout=30)
        _check(r, "grading service: list releases")
        return any(x.get("assignment_id") == self.assignment_id for x in r.json())

    def release(self, token: str, archive: bytes) -> None:
        r = requests.put(f"{self._assignment}/release", data=archive, timeout=120,
                         headers={**_auth(token), "Content-Type": "application/x-tar"})
        _check(r, "grading service: release", ok=(201,))

    def unrelease(self, token: str) -> None:
        r = requests.delete(f"{self._assignment}/release", headers=_auth(token), timeout=60)
        _check(r, "grading service: unrelease", ok=(200, 404))

    def submit(self, token: str, archive: bytes, upload_id: str, timeout: float) -> int:
        """The stored submission's id; StepFailed if the service did not acknowledge it.

        One new connection per submission, as each student's server makes its own. Plain
        http.client, not requests: the load test shares the machine with what it measures, and
        requests' session and adapter layers cost the client about as much CPU per upload as
        the hub's part of it (see benchmarks/process_cpu.py)."""
        url = urlsplit(f"{self._assignment}/submissions")
        cls = HTTPSConnection if url.scheme == "https" else HTTPConnection
        conn = cls(url.hostname or "127.0.0.1", url.port, timeout=timeout)
        try:
            conn.request("POST", url.path, body=archive, headers={
                **_auth(token), "X-Upload-Id": upload_id, "Content-Type": "application/x-tar"})
            r = conn.getresponse()
            status, body = r.status, r.read()
        except TimeoutError:
            raise StepFailed("submit: timed out") from None
        except (OSError, HTTPException):
            raise StepFailed("submit: connection failed") from None
        finally:
            conn.close()
        if status not in (200, 201):
            raise StepFailed(f"submit: HTTP {status}" + _detail(status, body))
        return int(json.loads(body)["id"])

    def stored(self, token: str) -> list[dict]:
        r = requests.get(f"{self._assignment}/submissions", headers=_auth(token), timeout=300)
        _check(r, "grading service: read submissions back")
        return r.json()


#: Stands in the template notebook for each submission's unique part (same length, so the tar
#: header stays valid when it is replaced).
_MARKER = b"LOADTEST-UNIQUE-0123456789abcdef"


def notebook_template(size: int) -> bytes:
    """A notebook of about `size` bytes in the exchange's upload format (tar), with a marker that
    `unique_archive` replaces: making one per submission costs the client almost nothing, so it
    does not compete with the service for the CPU during a rush on the same machine."""
    import nbformat

    from coursehub.grading.archive import pack

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Load test submission {_MARKER.decode()}"),
                nbformat.v4.new_code_cell("answer = 1 + 1\nanswer")]
    base = len(nbformat.writes(nb).encode())
    nb.cells.append(nbformat.v4.new_markdown_cell(random.randbytes(max(0, size - base - 100) // 2).hex()))
    return pack({"loadtest.ipynb": nbformat.writes(nb).encode()})


def unique_archive(template: bytes) -> bytes:
    """The template with its marker replaced by random hex: every submission's content differs."""
    return template.replace(_MARKER, secrets.token_hex(len(_MARKER) // 2).encode(), 1)


def student_version(course: object, assignment: str) -> bytes:
    """The student version of a local course's assignment (solutions and hidden tests removed by
    nbgrader's own steps, as the hub's no-exchange fallback makes it), packed for a release."""
    import tempfile

    from coursehub.grading.archive import pack
    from coursehub.platform.lti.opening import write_student_version

    with tempfile.TemporaryDirectory(prefix="loadtest-release-") as tmp:
        dest = Path(tmp) / "release"
        write_student_version(course, assignment, dest)  # type: ignore[arg-type]
        files = {str(p.relative_to(dest)): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}
    if not files:
        raise StepFailed(f"{assignment} has no notebooks to release")
    return pack(files)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def _check(r: requests.Response, what: str, ok: tuple[int, ...] = (200,)) -> None:
    if r.status_code not in ok:
        raise StepFailed(f"{what}: HTTP {r.status_code}" + _detail(r.status_code, r.content))


def _detail(status: int, body: bytes) -> str:
    """The service's error message, for the refusals a person can act on (not 5xx, not 401)."""
    try:
        detail = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        detail = ""
    return f" ({detail[:120]})" if detail and isinstance(detail, str) and status < 500 and status != 401 else ""
