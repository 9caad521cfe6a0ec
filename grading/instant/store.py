"""Instant results, one small JSON file per submission id, beside the submission store.

Kept out of the gradebook on purpose (instant results are never grades) and out of the grading
database (no migration for data that is only useful until the real feedback arrives). A file is
replaced atomically, so a reader sees the previous state or the next, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..ids import check_course_id

PENDING, DONE, FAILED, BUSY, SUPERSEDED = "pending", "done", "failed", "busy", "superseded"


class InstantStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, course_id: str, submission_id: int) -> Path:
        return self.root / check_course_id(course_id) / f"{int(submission_id)}.json"

    def write(self, course_id: str, submission_id: int, record: dict) -> None:
        dest = self.path(course_id, submission_id)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, course_id: str, submission_id: int) -> dict | None:
        try:
            return json.loads(self.path(course_id, submission_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
