"""Student side: submit (stock `nbgrader submit` and the Assignments panel's Submit button).

The student is whoever the hub token belongs to and the time is the service's; `--student` and the
local clock are not sent. A retried upload carries the same key, so it is stored once.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

from nbgrader.exchange.abc import ExchangeSubmit as ABCSubmit
from nbgrader.utils import find_all_notebooks

from coursehub.platform.environments import running_environment

from ..archive import collect_dir, pack
from ..envparity import submission_headers
from .base import CoursehubExchange
from .lateness import receipt


def _q(value: str) -> str:
    return quote(value, safe="")


class ExchangeSubmit(CoursehubExchange, ABCSubmit):
    #: One sentence after a successful submit (the service's time, on time or late).
    receipt: str | None = None
    #: The service's answer to the submit (id, timestamp, late, and "instant_feedback" when it runs).
    submission: dict | None = None

    def init_src(self) -> None:
        cd = self.coursedir
        if self.path_includes_course:
            root = os.path.join(cd.course_id, cd.assignment_id)
        else:
            root = cd.assignment_id
        self.src_path = os.path.abspath(os.path.join(self.assignment_dir, root))
        cd.assignment_id = os.path.split(self.src_path)[-1]
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self) -> None:
        self.require_course()
        if self.coursedir.student_id not in ("*", ""):
            self.log.warning("Ignoring --student=%s: the grading service submits as the signed-in user.",
                             self.coursedir.student_id)

    def check_filename_diff(self, released: list[str]) -> None:
        released_nbs = sorted(f"{nb}.ipynb" for nb in released)
        submitted = find_all_notebooks(self.src_path)
        missing = [nb for nb in released_nbs if nb not in submitted]
        extra = [nb for nb in submitted if nb not in released_nbs]
        if not missing and not extra:
            return
        a = self.coursedir.assignment_id
        if missing and self.strict:
            self.fail(f"{a} was not submitted: {_names(missing)} {'is' if len(missing) == 1 else 'are'} missing "
                      "(keep the released notebooks' names).")
        # The log keeps nbgrader's own listing (what `nbgrader submit` users know).
        diff = "Expected:\n\t{}\nSubmitted:\n\t{}".format(
            "\n\t".join(f"{nb}: {'MISSING' if nb in missing else 'FOUND'}" for nb in released_nbs),
            "\n\t".join(f"{nb}: {'EXTRA' if nb in extra else 'OK'}" for nb in submitted),
        )
        self.log.warning("Possible missing notebooks and/or extra notebooks submitted for assignment %s:\n%s",
                         a, diff)

    def copy_files(self) -> None:
        cd = self.coursedir
        releases = self.api("GET", "releases", params={"course": cd.course_id, "assignment": cd.assignment_id},
                            retry=True).json()
        if not releases:
            self.fail(f"Assignment not found: {cd.course_id} {cd.assignment_id} is not released.")
        self.check_filename_diff(releases[0]["notebooks"])
        files = collect_dir(self.src_path, ignore=cd.ignore, include=cd.include,
                            max_file_bytes=1000 * cd.max_file_size, log=self.log)
        files.pop("timestamp.txt", None)
        files.pop("submission_secret.txt", None)
        size = sum(len(v) for v in files.values())
        if size > 1000 * cd.max_dir_size:
            self.fail(f"{cd.assignment_id} was not submitted: its files add up to {_mib(size)}; the limit is "
                      f"{_mib(1000 * cd.max_dir_size)}.")
        self.log.info("Source: %s", self.src_path)
        r = self.api(
            "POST", f"courses/{_q(cd.course_id)}/assignments/{_q(cd.assignment_id)}/submissions",
            data=pack(files), retry=True,
            headers={"Content-Type": "application/x-tar", "X-Upload-Id": uuid.uuid4().hex,
                     **submission_headers(files, running_environment())},  # for the grader's parity check
        )
        info = r.json()
        self.timestamp = info["timestamp"]
        self.submission = info
        self.receipt = receipt(info)
        (self.log.warning if info.get("late") else self.log.info)(self.receipt)
        self.log.info("Submitted as: %s %s %s", cd.course_id, cd.assignment_id, info["timestamp"])

    def instant_result(self, submission_id: int) -> dict:
        """The visible tests' results of one of the caller's submissions (instant feedback)."""
        cd = self.coursedir
        r = self.api("GET", f"courses/{_q(cd.course_id)}/assignments/{_q(cd.assignment_id)}/submissions/"
                            f"{int(submission_id)}/instant")
        return r.json()


def _names(notebooks: list[str]) -> str:
    return ", ".join(notebooks)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
