"""Student side: fetch an assignment, fetch feedback (stock `nbgrader fetch_assignment`,
`nbgrader fetch_feedback` and the Assignments panel, through the grading service)."""

from __future__ import annotations

import fnmatch
import io
import json
import os
import tarfile
from urllib.parse import quote

from nbgrader.exchange.abc import ExchangeFetchAssignment as ABCFetchAssignment
from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCFetchFeedback

from ..archive import UploadLimits, read_archive, write_files
from .base import CoursehubExchange

#: Downloads come from the service, which validated them on upload; bounds still apply.
DOWNLOAD_LIMITS = UploadLimits(max_file_bytes=2**34, max_total_bytes=2**36, max_entries=10**6)


def _q(value: str) -> str:
    return quote(value, safe="")


def _ignored(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(part, p) for part in rel.split("/") for p in patterns)


def _as_the_kernel_fills_it(content: bytes) -> bytes:
    """The released notebook with the `language_info` its Python kernel reports when it starts.

    nbgrader's release keeps only `language_info.name`; JupyterLab fills in the rest from the kernel
    a moment after opening, which marks a notebook the student has not touched as modified (and asks
    to save it on close). ipykernel's `language_info` for this server's Python is what the kernel
    reports (course kernels run the server's interpreter). Cells are untouched, so nbgrader's
    checksums are too; anything unreadable or not Python is left exactly as released."""
    try:
        nb = json.loads(content)
        info = nb["metadata"].get("language_info") or {}
        if not isinstance(info, dict) or info.get("name") != "python" or len(info) > 1:
            return content
        from ipykernel.ipkernel import IPythonKernel

        nb["metadata"]["language_info"] = dict(IPythonKernel.language_info)
    except (ValueError, KeyError, TypeError, AttributeError, ImportError):
        return content
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


class ExchangeFetchAssignment(CoursehubExchange, ABCFetchAssignment):
    def init_src(self) -> None:
        course_id = self.require_course()
        cd = self.coursedir
        r = self.api("GET", f"courses/{_q(course_id)}/assignments/{_q(cd.assignment_id)}/release", retry=True)
        self.files = read_archive(r.content, DOWNLOAD_LIMITS)
        self.src_path = f"{self.service_url.rstrip('/')}/{course_id}/{cd.assignment_id}"

    def init_dest(self) -> None:
        cd = self.coursedir
        root = os.path.join(cd.course_id, cd.assignment_id) if self.path_includes_course else cd.assignment_id
        self.dest_path = os.path.abspath(os.path.join(self.assignment_dir, root))
        if os.path.isdir(self.dest_path) and not self.replace_missing_files:
            self.fail(f"You already have a copy of the assignment in this directory: {root}")

    def copy_files(self) -> None:
        cd = self.coursedir
        files = {k: _as_the_kernel_fills_it(v) if k.endswith(".ipynb") else v
                 for k, v in self.files.items() if not _ignored(k, list(cd.ignore))}
        self.log.info("Source: %s", self.src_path)
        self.log.info("Destination: %s", self.dest_path)
        existed = os.path.isdir(self.dest_path)
        written = write_files(self.dest_path, files, only_missing=existed)
        if existed:
            for rel in written:
                self.log.warning("Replacing missing file '%s'", rel)
        self.log.info("Fetched as: %s %s", cd.course_id, cd.assignment_id)


class ExchangeFetchFeedback(CoursehubExchange, ABCFetchFeedback):
    def init_src(self) -> None:
        course_id = self.require_course()
        cd = self.coursedir
        if cd.assignment_id:
            assignments = [cd.assignment_id]
        else:
            mine = self.api("GET", "submissions", params={"course": course_id, "mine": "1"}, retry=True).json()
            assignments = sorted({s["assignment_id"] for s in mine})
        self.feedback = []  # (assignment_id, timestamp, notebook_id, bytes)
        for assignment_id in assignments:
            r = self.api("GET", f"courses/{_q(course_id)}/assignments/{_q(assignment_id)}/feedback", retry=True)
            with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:") as tar:
                manifest = json.load(tar.extractfile("manifest.json"))
            files = read_archive(r.content, DOWNLOAD_LIMITS)
            for entry in manifest:
                for nb in entry["notebooks"]:
                    content = files.get(f"{entry['id']}/{nb}.html")
                    if content is not None:
                        self.feedback.append((assignment_id, entry["timestamp"], nb, content))
                        self.log.info("Found feedback for '%s/%s/%s' submitted at %s",
                                      course_id, assignment_id, nb, entry["timestamp"])
        self.src_path = f"{self.service_url.rstrip('/')}/{course_id}/feedback"

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        cd = self.coursedir
        for assignment_id, timestamp, nb, content in self.feedback:
            if "/" in timestamp or timestamp.startswith(".") or "/" in nb:
                self.fail(f"unexpected feedback name from the service: {timestamp!r}/{nb!r}")
            dest = os.path.abspath(os.path.join(self.local_dir(cd.course_id, assignment_id), "feedback", timestamp))
            os.makedirs(dest, exist_ok=True)
            path = os.path.join(dest, f"{nb}.html")
            with open(path, "wb") as fh:
                fh.write(content)
            self.log.info("Fetched feedback: %s", path)
