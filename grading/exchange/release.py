"""Instructor side: release an assignment, release feedback (stock `nbgrader release_assignment`,
`nbgrader release_feedback` and the formgrader buttons, through the grading service)."""

from __future__ import annotations

import glob
import os
import re
from urllib.parse import quote

from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCReleaseAssignment
from nbgrader.exchange.abc import ExchangeReleaseFeedback as ABCReleaseFeedback

from ..archive import collect_dir, pack
from .base import CoursehubExchange


def _q(value: str) -> str:
    return quote(value, safe="")


class ExchangeReleaseAssignment(CoursehubExchange, ABCReleaseAssignment):
    def init_src(self) -> None:
        cd = self.coursedir
        self.src_path = cd.format_path(cd.release_directory, ".", cd.assignment_id)
        if not os.path.isdir(self.src_path):
            source = cd.format_path(cd.source_directory, ".", cd.assignment_id)
            if os.path.isdir(source):
                self.fail(f"Assignment found in '{source}' but not '{self.src_path}', "
                          "run `nbgrader generate_assignment` first.")
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self) -> None:
        self.require_course()

    def copy_files(self) -> None:
        cd = self.coursedir
        files = collect_dir(self.src_path, ignore=cd.ignore, include=cd.include,
                            max_file_bytes=1000 * cd.max_file_size, log=self.log)
        size = sum(len(v) for v in files.values())
        if size > 1000 * cd.max_dir_size:
            self.fail(f"Directory size is too big. Size is {size}, maximum size is {1000 * cd.max_dir_size}")
        self.log.info("Source: %s", self.src_path)
        self.api("PUT", f"courses/{_q(cd.course_id)}/assignments/{_q(cd.assignment_id)}/release",
                 params={"force": "1" if self.force else "0"}, data=pack(files), retry=True,
                 headers={"Content-Type": "application/x-tar"})
        self.log.info("Released as: %s %s", cd.course_id, cd.assignment_id)


class ExchangeReleaseFeedback(CoursehubExchange, ABCReleaseFeedback):
    def init_src(self) -> None:
        cd = self.coursedir
        student_id = cd.student_id if cd.student_id else "*"
        self.src_path = cd.format_path(cd.feedback_directory, student_id, cd.assignment_id)

    def init_dest(self) -> None:
        self.require_course()

    def copy_files(self) -> None:
        cd = self.coursedir
        exclude = set(cd.student_id_exclude.split(",")) if cd.student_id_exclude else set()
        regexp = re.escape(os.path.sep).join([
            cd.format_path(cd.feedback_directory, "(?P<student_id>.*)", cd.assignment_id, escape=True),
            "(?P<notebook_id>.*).html",
        ])
        by_dir: dict[str, tuple[str, list[str]]] = {}
        for html in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            m = re.match(regexp, html)
            if m is None:
                self.log.error("Could not match '%s' with regexp '%s'", html, regexp)
                continue
            student_id = m.group("student_id")
            if student_id in exclude:
                self.log.debug("Skipping student '%s'", student_id)
                continue
            by_dir.setdefault(os.path.dirname(html), (student_id, []))[1].append(html)
        for folder, (student_id, htmls) in sorted(by_dir.items()):
            with open(os.path.join(folder, "timestamp.txt")) as fh:
                timestamp = fh.read().strip()
            secret_file = os.path.join(folder, "submission_secret.txt")
            secret = open(secret_file).read().strip() if os.path.isfile(secret_file) else None
            files = {}
            for html in htmls:
                with open(html, "rb") as fh:
                    files[os.path.basename(html)] = fh.read()
            headers = {"Content-Type": "application/x-tar"}
            if secret:
                headers["X-Submission-Secret"] = secret
            self.api("PUT", f"courses/{_q(cd.course_id)}/assignments/{_q(cd.assignment_id)}/feedback/{_q(student_id)}",
                     params={"timestamp": timestamp}, data=pack(files), headers=headers, retry=True)
            for html in htmls:
                nb = os.path.splitext(os.path.basename(html))[0]
                self.log.info("Releasing feedback for student '%s' on assignment '%s/%s/%s' (%s)",
                              student_id, cd.course_id, cd.assignment_id, nb, timestamp)
