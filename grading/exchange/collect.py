"""Instructor side: collect (stock `nbgrader collect` and the formgrader's Collect button).

The service picks each student's latest submission (or, with --before-duedate, the latest on time
by the course's deadline and the student's extension); collected folders get the service's
`timestamp.txt` and `submission_secret.txt`, exactly where nbgrader's own collect puts them.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCCollect
from nbgrader.utils import parse_utc

from ..ids import BadId, check_relpath, check_student_id
from .base import CoursehubExchange

#: Submissions per download: bounds the memory of the service and of the instructor's server.
BATCH = 100


def _q(value: str) -> str:
    return quote(value, safe="")


class ExchangeCollect(CoursehubExchange, ABCCollect):
    def init_src(self) -> None:
        course_id = self.require_course()
        cd = self.coursedir
        duedate = None
        if self.before_duedate:
            with Gradebook(cd.db_url, course_id) as gb:
                try:
                    duedate = gb.find_assignment(cd.assignment_id).duedate
                except MissingEntry:
                    duedate = None
        params = {"before_duedate": "1" if self.before_duedate else "0"}
        if duedate is not None:
            params["duedate"] = duedate.isoformat()
        if cd.student_id and cd.student_id != "*":
            params["student"] = cd.student_id
        self.records = self.api(
            "GET", f"courses/{_q(course_id)}/assignments/{_q(cd.assignment_id)}/collection", params=params,
            retry=True,
        ).json()

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        cd = self.coursedir
        if not self.records:
            self.log.warning("No submissions of '%s' for course '%s' to collect", cd.assignment_id, cd.course_id)
            return
        self.log.info("Processing %d submissions of '%s' for course '%s'", len(self.records), cd.assignment_id,
                      cd.course_id)
        todo = []
        for rec in self.records:
            student_id = rec["student_id"]
            try:
                check_student_id(student_id)
            except BadId as e:
                self.fail(f"refusing a submission with an unsafe student id: {e}")
            dest_path = cd.format_path(cd.submitted_directory, student_id, cd.assignment_id)
            copy = updating = False
            if os.path.isdir(dest_path):
                existing = cd.get_existing_timestamp(dest_path)
                new = parse_utc(rec["timestamp"])
                if self.update and (existing is None or new > existing):
                    copy = updating = True
                elif self.before_duedate and existing != new:
                    copy = updating = True
            else:
                copy = True
            if copy:
                todo.append((rec, dest_path, updating))
            elif self.update:
                self.log.info("No newer submission to collect: %s %s", student_id, cd.assignment_id)
            else:
                self.log.info("Submission already exists, use --update to update: %s %s", student_id,
                              cd.assignment_id)
        if not todo:
            return
        batches = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
        # Download the next batch while this one is written to disk.
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._download, batches[0])
            for i, batch in enumerate(batches):
                files = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(self._download, batches[i + 1])
                self._write_batch(batch, files)

    def _download(self, batch: list) -> dict[str, dict[str, bytes]]:
        cd = self.coursedir
        r = self.api("POST", f"courses/{_q(cd.course_id)}/assignments/{_q(cd.assignment_id)}/collection",
                     json_body={"ids": [rec["id"] for rec, _, _ in batch]}, retry=True)
        return _split_by_id(r.content)

    def _write_batch(self, todo: list, files: dict[str, dict[str, bytes]]) -> None:
        cd = self.coursedir
        for rec, dest_path, updating in todo:
            sub_files = files.get(str(rec["id"]))
            if sub_files is None:
                self.fail(f"the service did not send the submission of {rec['student_id']}")
            self.log.info("%s submission: %s %s", "Updating" if updating else "Collecting", rec["student_id"],
                          cd.assignment_id)
            _replace_dir(dest_path, sub_files)


def _split_by_id(data: bytes) -> dict[str, dict[str, bytes]]:
    """The collection tar as {submission id: {relative path: bytes}} (paths checked)."""
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if not member.isfile() or member.name == "manifest.json":
                continue
            sub_id, _, rel = member.name.partition("/")
            check_relpath(rel)
            fh = tar.extractfile(member)
            out.setdefault(sub_id, {})[rel] = fh.read() if fh else b""
    return out


def _replace_dir(dest: str, files: dict[str, bytes]) -> None:
    """Write into a sibling temp folder, then swap it in, so a folder is never half-collected."""
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".collect-{uuid.uuid4().hex}")
    os.mkdir(tmp)
    for rel, content in files.items():  # paths were checked when the download was split
        if "/" in rel:
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(tmp, rel), "wb") as fh:
            fh.write(content)
    if os.path.isdir(dest):
        old = os.path.join(parent, f".old-{uuid.uuid4().hex}")
        os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old)
    else:
        os.rename(tmp, dest)
