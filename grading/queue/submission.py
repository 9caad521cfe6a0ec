"""The submission an autograde job names, read from the grading service's store, checksum verified.

A job queued after a collect carries `submission_id` and `sha256` (grading/queue/plugin.py). The
worker grades the stored blob of that submission, not the `submitted/` folder the instructor's
collect wrote: that folder can be edited after collect (by staff, a script, a sync tool), the
stored blob cannot change without its checksum saying so. Anything that does not add up (no such
submission, a submission of another course, assignment or student, a checksum that does not match)
is refused: never graded, never retried, listed as a dead letter with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nbgrader.utils import parse_utc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..archive import ArchiveError, UploadLimits, read_archive
from ..models import Submission
from ..storage import BlobStore, CorruptBlob
from .api import Lease

#: The blob passed the upload limits when it was stored; reading it back is not limited again.
_STORED = UploadLimits(max_file_bytes=2**40, max_total_bytes=2**40, max_entries=10**6)


class StoreReader(BlobStore):
    """The grading service's store, read only: the worker's mount of it is read only (Kubernetes),
    so nothing is created or written; reads are BlobStore's own (checksum verified)."""

    def __init__(self, root: Path) -> None:  # BlobStore's, without creating its folders
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._resolved_root = self.root.resolve()


class SubmissionRefused(Exception):
    """The job's stored submission cannot be graded; the message says why (for staff)."""


@dataclass
class StoredSubmission:
    """One submission as the service stored it: its files and the service's own timestamp."""

    id: int
    files: dict[str, bytes]
    #: nbgrader's timestamp string (the service's clock at submit), as collect writes timestamp.txt
    timestamp: str

    @property
    def submitted_at(self) -> datetime:
        return parse_utc(self.timestamp)


def names_submission(lease: Lease) -> bool:
    """Whether the job names a stored submission (jobs queued by hand name only a course folder)."""
    return "submission_id" in lease.payload


def load(engine: Engine, store: BlobStore, lease: Lease) -> StoredSubmission:
    """The stored submission the job names, its bytes verified against the job's and the row's sha256."""
    sub_id, wanted = lease.payload.get("submission_id"), lease.payload.get("sha256")
    what = f"job {lease.job_id}: submission {sub_id}"
    if not isinstance(sub_id, int) or not isinstance(wanted, str):
        raise SubmissionRefused(f"{what}: the job needs an integer submission_id and a sha256")
    with Session(engine) as s:
        row = s.get(Submission, sub_id)
        if row is None:
            raise SubmissionRefused(f"{what} does not exist in the grading database")
        if (row.course_id, row.assignment_id, row.student_id) != (lease.course_id, lease.assignment, lease.student):
            raise SubmissionRefused(f"{what} belongs to {row.course_id}/{row.assignment_id}/{row.student_id}, "
                                    f"not to {lease.course_id}/{lease.assignment}/{lease.student}")
        if row.sha256 != wanted:
            raise SubmissionRefused(f"{what}: the job's checksum does not match the stored submission's")
        blob_path, timestamp = row.blob_path, row.timestamp
    try:
        data = store.read(blob_path, wanted)
    except CorruptBlob as e:
        raise SubmissionRefused(f"{what}: {e}; not graded") from None
    except ValueError as e:  # a path outside the store; an unreadable volume (OSError) is retried instead
        raise SubmissionRefused(f"{what}: {e}") from None
    try:
        files = read_archive(data, _STORED)
    except ArchiveError as e:
        raise SubmissionRefused(f"{what}: the stored archive cannot be read ({e})") from None
    return StoredSubmission(sub_id, files, timestamp)
