"""Instructor side: collect (stock `nbgrader collect` and the formgrader's Collect button).

The service picks each student's latest submission (or, with --before-duedate, the latest on time
by the course's deadline and the student's extension); collected folders get the service's
`timestamp.txt` and `submission_secret.txt`, exactly where nbgrader's own collect puts them.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
from typing import Any
from urllib.parse import quote

import requests
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCCollect
from nbgrader.utils import parse_utc
from requests.adapters import HTTPAdapter

from ..ids import BadId, check_relpath, check_student_id
from .base import RETRY_STATUSES, CoursehubExchange, retry_policy

#: Submissions per request (the service's limit). The archive is streamed both ways, so memory
#: stays bounded by one submission whatever the number.
MAX_IDS = 10_000


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
        for i in range(0, len(todo), MAX_IDS):
            self._stream(todo[i:i + MAX_IDS])

    def _stream(self, todo: list) -> None:
        """One request for up to MAX_IDS submissions; each submission's files are written as they
        arrive and its folder swapped in when the next one starts (the service reads blobs while
        this side writes)."""
        cd = self.coursedir
        wanted = {str(rec["id"]): (rec, dest_path, updating) for rec, dest_path, updating in todo}
        url = (self.service_url.rstrip("/") + f"/api/courses/{_q(cd.course_id)}/assignments/"
               f"{_q(cd.assignment_id)}/collection")
        done: set[str] = set()
        try:
            with requests.Session() as session:
                session.mount(url, HTTPAdapter(max_retries=retry_policy(self.retries)))
                with session.post(url, json={"ids": [rec["id"] for rec, _, _ in todo]}, stream=True,
                                  headers={"Authorization": f"token {self.api_token}"},
                                  timeout=(self.connect_timeout, self.upload_timeout)) as r:
                    if r.status_code in RETRY_STATUSES:
                        self.unavailable()
                    if r.status_code != 200:
                        self.fail(self._message(r))
                    r.raw.decode_content = True
                    self._unpack(r.raw, wanted, done)
        except (requests.RequestException, tarfile.TarError, EOFError) as e:
            self.log.warning("collect download failed: %s", type(e).__name__)
            self.unavailable()
        for sub_id, (rec, _, _) in wanted.items():
            if sub_id not in done:
                self.fail(f"the service did not send the submission of {rec['student_id']}")

    def _unpack(self, stream: Any, wanted: dict, done: set[str]) -> None:
        current: _Folder | None = None
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if not member.isfile() or member.name == "manifest.json":
                    continue
                sub_id, _, rel = member.name.partition("/")
                check_relpath(rel)
                if current is None or current.sub_id != sub_id:
                    if current is not None:
                        done.add(current.finish())
                    if sub_id not in wanted or sub_id in done:
                        self.fail(f"the service sent a submission that was not asked for ({sub_id})")
                    rec, dest_path, updating = wanted[sub_id]
                    self.log.info("%s submission: %s %s", "Updating" if updating else "Collecting",
                                  rec["student_id"], self.coursedir.assignment_id)
                    current = _Folder(sub_id, dest_path)
                fh = tar.extractfile(member)
                current.write(rel, fh.read() if fh else b"")
        if current is not None:
            done.add(current.finish())


class _Folder:
    """One submission's folder, written beside its destination, then swapped in whole, so a
    folder is never half-collected."""

    def __init__(self, sub_id: str, dest: str):
        self.sub_id, self.dest = sub_id, dest
        self.parent = os.path.dirname(dest)
        os.makedirs(self.parent, exist_ok=True)
        self.tmp = os.path.join(self.parent, f".collect-{uuid.uuid4().hex}")
        os.mkdir(self.tmp)

    def write(self, rel: str, content: bytes) -> None:
        if "/" in rel:
            os.makedirs(os.path.join(self.tmp, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(self.tmp, rel), "wb") as fh:
            fh.write(content)

    def finish(self) -> str:
        if os.path.isdir(self.dest):
            old = os.path.join(self.parent, f".old-{uuid.uuid4().hex}")
            os.rename(self.dest, old)
            os.rename(self.tmp, self.dest)
            shutil.rmtree(old)
        else:
            os.rename(self.tmp, self.dest)
        return self.sub_id
