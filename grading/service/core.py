"""The exchange's rules, independent of HTTP: who may do what, where time comes from, what is kept.

`ExchangeCore` methods are synchronous (the web layer runs them in a thread pool) and take a
`Caller`: the hub user the service authenticated, with their course roles from hub groups. Nothing
the client says about identity or time is used: the student is the caller, the time is `clock()`.
Every write stores its blob durably first, then commits the row that makes it visible in one
transaction, then returns; only then does the web layer acknowledge.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import secrets
import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import bindparam, literal, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from coursehub.platform.courses import Catalog, Course
from coursehub.platform.groups import is_staff

from .. import envparity
from ..archive import ArchiveError, UploadLimits, pack, read_archive, validate_notebooks
from ..clock import utcnow
from ..deadlines import deadline_info
from ..ids import BadId, check_assignment_id, check_course_id, check_notebook_id, check_student_id
from ..models import Event, Feedback, Release, Submission
from ..storage import Blob, BlobStore, StoreFull, stored_members, tar_stream
from .batching import GroupCommitter
from .errors import ServiceError
from .hidden import strip_feedback_files
from .inputs import bounded, check_notebook

log = logging.getLogger("coursehub.grading.exchange")

#: Before a submission is stored, in one round trip built once (a deadline runs it hundreds of times
#: a second): is the assignment released, and did this upload id already store a submission (a retry)?
SUBMIT_CHECK = select(
    select(literal(1)).where(Release.course_id == bindparam("course"), Release.assignment_id == bindparam("assignment"),
                             Release.active.is_(True)).limit(1).scalar_subquery().label("released"),
    select(Submission.id).where(Submission.course_id == bindparam("course"), Submission.student_id == bindparam("student"),
                                Submission.upload_id == bindparam("upload")).limit(1).scalar_subquery().label("existing"),
)


#: nbgrader's default timestamp format; the string is also the feedback folder name on the client.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
#: Seconds a client is asked to wait (Retry-After) when the database is locked or unreachable.
DB_RETRY_AFTER = 5


@dataclass(frozen=True)
class Caller:
    """An authenticated hub user and their roles per course (from `course:<id>:<role>` groups)."""

    name: str
    roles: dict[str, frozenset[str]] = field(default_factory=dict)

    def roles_in(self, course_id: str) -> frozenset[str]:
        return self.roles.get(course_id, frozenset())

    def is_staff(self, course_id: str) -> bool:
        return is_staff(self.roles_in(course_id))


def format_timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def _bad_id(fn: Callable[[object], str], value: object) -> str:
    try:
        return fn(value)
    except BadId as e:
        raise ServiceError(400, str(e)) from None


@dataclass
class CollectedEvent:
    """What `after_collect` hooks receive: the submissions an instructor just collected."""

    course_id: str
    assignment_id: str
    actor: str
    submissions: list[dict]


class ExchangeCore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: BlobStore,
        catalog: Callable[[], Catalog],
        limits: UploadLimits,
        clock: Callable[[], dt.datetime] = utcnow,
        committer: GroupCommitter | None = None,
    ):
        self.sessions = sessions
        self.store = store
        self.catalog = catalog
        self.limits = limits
        self.clock = clock
        #: With a GroupCommitter, submissions' rows are committed in batches (one commit for many
        #: concurrent uploads); without, each in its own transaction.
        self.committer = committer

    # --- authority -------------------------------------------------------------------------
    def course(self, course_id: str) -> Course:
        _bad_id(check_course_id, course_id)
        course = self.catalog().get(course_id)
        if course is None:
            raise ServiceError(404, f"There is no course {course_id!r} on this coursehub.")
        return course

    def require_member(self, caller: Caller, course_id: str) -> Course:
        course = self.course(course_id)
        if not caller.roles_in(course_id):
            raise ServiceError(403, f"You are not a member of the course {course_id!r}.")
        return course

    def require_staff(self, caller: Caller, course_id: str, action: str) -> Course:
        course = self.require_member(caller, course_id)
        if not caller.is_staff(course_id):
            raise ServiceError(403, f"Only instructors and teaching assistants of {course_id!r} can {action}.")
        return course

    def courses_of(self, caller: Caller) -> list[dict]:
        catalog = self.catalog()
        return [
            {"course_id": cid, "title": c.title, "roles": sorted(caller.roles_in(cid))}
            for cid, c in sorted(catalog.courses.items())
            if caller.roles_in(cid)
        ]

    # --- releases --------------------------------------------------------------------------
    def release(self, caller: Caller, course_id: str, assignment_id: str, data: bytes, force: bool) -> dict:
        self.require_staff(caller, course_id, "release assignments")
        _bad_id(check_assignment_id, assignment_id)
        files = self._read(data)
        notebooks = self._notebooks(files)
        if not notebooks:
            raise ServiceError(422, f"The release of {assignment_id!r} contains no notebook.")
        blob = self._put(course_id, "release", pack(files))
        now = self.clock()
        with self._session() as s:
            active = self._active_release(s, course_id, assignment_id)
            if active is not None and not force:
                self.store.delete(blob.path)
                raise ServiceError(
                    409, f"{course_id} {assignment_id} is already released; add --force to overwrite it."
                )
            if active is not None:
                active.active = False
                active.unreleased_at = now
            row = Release(
                course_id=course_id, assignment_id=assignment_id, blob_path=blob.path, sha256=blob.sha256,
                size=blob.size, notebooks=notebooks, released_at=now, released_by=caller.name, active=True,
            )
            s.add(row)
            self._event(s, caller, course_id, assignment_id, "released", {"sha256": blob.sha256, "force": force})
            self._commit(s, blob.path)
            return self._release_info(row)

    def unrelease(self, caller: Caller, course_id: str, assignment_id: str) -> dict:
        self.require_staff(caller, course_id, "unrelease assignments")
        _bad_id(check_assignment_id, assignment_id)
        with self._session() as s:
            active = self._active_release(s, course_id, assignment_id)
            if active is None:
                raise ServiceError(404, f"{course_id} {assignment_id} is not released.")
            active.active = False
            active.unreleased_at = self.clock()
            self._event(s, caller, course_id, assignment_id, "unreleased", None)
            self._commit(s)
            return self._release_info(active)

    def releases(self, caller: Caller, course_id: str | None = None, assignment_id: str | None = None) -> list[dict]:
        courses = [course_id] if course_id else [c["course_id"] for c in self.courses_of(caller)]
        for cid in courses:
            self.require_member(caller, cid)
        if assignment_id:
            _bad_id(check_assignment_id, assignment_id)
        if not courses:
            return []
        with self._session() as s:
            q = select(Release).where(Release.active.is_(True), Release.course_id.in_(courses))
            if assignment_id:
                q = q.where(Release.assignment_id == assignment_id)
            rows = s.scalars(q.order_by(Release.course_id, Release.assignment_id)).all()
            out = [self._release_info(r) for r in rows]
        now = self.clock()
        for info in out:  # the caller's own deadline, so the client can warn before a late submit
            info["deadline"] = deadline_info(self.course(info["course_id"]), info["assignment_id"], caller.name, now)
        return out

    def release_files(self, caller: Caller, course_id: str, assignment_id: str) -> tuple[dict, bytes]:
        self.require_member(caller, course_id)
        _bad_id(check_assignment_id, assignment_id)
        with self._session() as s:
            row = self._active_release(s, course_id, assignment_id)
            if row is None:
                raise ServiceError(404, f"The assignment {assignment_id!r} of {course_id!r} is not released.")
            if not caller.is_staff(course_id):
                self._event(s, caller, course_id, assignment_id, "fetched", None)
                self._commit(s)
            info = self._release_info(row)
        return info, self.store.read(row.blob_path, row.sha256)

    # --- submissions -----------------------------------------------------------------------
    def submit(self, caller: Caller, course_id: str, assignment_id: str, data: bytes,
               upload_id: str | None = None, environment: str | None = None, kernel: str | None = None) -> dict:
        """Store a submission by `caller` at the service's time; every submission is kept.
        `environment` and `kernel` are what the client reported for the parity check (envparity)."""
        course = self.require_member(caller, course_id)
        _bad_id(check_assignment_id, assignment_id)
        _bad_id(check_student_id, caller.name)
        upload_id = upload_id or uuid.uuid4().hex
        if not (0 < len(upload_id) <= 64 and upload_id.isascii() and upload_id.replace("-", "").isalnum()):
            raise ServiceError(400, "invalid upload id (letters, digits and '-', at most 64)")
        with self._session() as s:  # one round trip: the release, and a retry of this upload
            released, existing_id = s.connection().execute(SUBMIT_CHECK, {
                "course": course_id, "assignment": assignment_id, "student": caller.name, "upload": upload_id,
            }).one()
            if released is None:
                raise ServiceError(404, f"The assignment {assignment_id!r} of {course_id!r} is not released.")
            existing = s.get(Submission, existing_id) if existing_id is not None else None
        files = self._read(data)
        # What the service writes itself is never taken from the client.
        for reserved in ("timestamp.txt", "submission_secret.txt", envparity.RECORD_FILE):
            files.pop(reserved, None)
        notebooks = self._notebooks(files)
        packed = pack(files)
        digest = hashlib.sha256(packed).hexdigest()
        if existing is not None:
            return self._duplicate(existing, assignment_id, digest)
        blob = self._put(course_id, "submission", packed, sha256=digest)
        now = self.clock()
        due = course.due_for(assignment_id, caller.name)
        grace = dt.timedelta(minutes=course.late_policy.grace_minutes)
        seconds_late = max(0, int((now - due).total_seconds())) if due else 0
        late = bool(due and now > due + grace)
        environment, kernel = envparity.clean_environment(environment), envparity.clean_kernel(kernel)

        def add(s: Session) -> Submission:
            row = Submission(
                course_id=course_id, assignment_id=assignment_id, student_id=caller.name, submitted_at=now,
                timestamp=format_timestamp(now), upload_id=upload_id, blob_path=blob.path, sha256=blob.sha256,
                size=blob.size, notebooks=notebooks, secret=secrets.token_hex(64), due_at=due, late=late,
                seconds_late=seconds_late if late else 0, environment=environment, kernel=kernel,
            )
            s.add(row)
            self._event(s, caller, course_id, assignment_id, "submitted",
                        {"timestamp": row.timestamp, "late": late, "sha256": blob.sha256})
            return row

        try:
            if self.committer is not None:
                row = self.committer.run(add)  # returns once the batch carrying the row is committed
            else:
                with self._session() as s:
                    row = add(s)
                    try:
                        s.commit()
                    except BaseException:
                        s.rollback()
                        raise
        except IntegrityError:
            self.store.delete(blob.path)
            with self._session() as s:
                existing = self._by_upload(s, course_id, caller.name, upload_id)
            if existing is None:
                raise
            return self._duplicate(existing, assignment_id, digest)
        except OperationalError:
            # The commit may or may not have happened (connection lost): keep the blob. A retry
            # with the same upload id finds the row if it exists; unreferenced blobs are swept.
            raise ServiceError(503, "The grading database is unavailable; your work may not have been "
                                    "submitted. Please submit again in a moment.",
                               retry_after=DB_RETRY_AFTER) from None
        except BaseException:
            self.store.delete(blob.path)
            raise
        log.info("submission %s/%s by %s at %s%s", course_id, assignment_id, caller.name, row.timestamp,
                 " (late)" if late else "")
        return self._submission_info(row) | {"duplicate": False}

    def submissions(
        self, caller: Caller, course_id: str | None = None, assignment_id: str | None = None,
        student_id: str | None = None, mine: bool = False,
    ) -> list[dict]:
        """Submissions the caller may see: students only their own, staff their course's."""
        courses = [course_id] if course_id else [c["course_id"] for c in self.courses_of(caller)]
        for cid in courses:
            self.require_member(caller, cid)
        if assignment_id:
            _bad_id(check_assignment_id, assignment_id)
        if student_id:
            _bad_id(check_student_id, student_id)
        if mine:
            if student_id and student_id != caller.name:
                raise ServiceError(403, "You can only list your own submissions.")
            student_id = caller.name
        if student_id and student_id != caller.name:
            not_staff = [c for c in courses if not caller.is_staff(c)]
            if not_staff:
                raise ServiceError(403, "Students can only list their own submissions.")
        if not courses:
            return []
        with self._session() as s:
            q = select(Submission).where(Submission.course_id.in_(courses))
            if assignment_id:
                q = q.where(Submission.assignment_id == assignment_id)
            if student_id:
                q = q.where(Submission.student_id == student_id)
            else:
                staff = [c for c in courses if caller.is_staff(c)]
                others = [c for c in courses if c not in staff]
                if others:  # a student sees only their own rows, whatever they ask for
                    from sqlalchemy import or_

                    q = q.where(or_(Submission.course_id.in_(staff), Submission.student_id == caller.name))
            rows = s.scalars(q.order_by(Submission.course_id, Submission.assignment_id, Submission.student_id,
                                        Submission.submitted_at, Submission.id)).all()
            return [self._submission_info(r, feedback=True) for r in rows]

    # --- collect ---------------------------------------------------------------------------
    def collection(
        self, caller: Caller, course_id: str, assignment_id: str, *, before_duedate: bool = False,
        student_id: str | None = None, fallback_due: dt.datetime | None = None,
    ) -> list[dict]:
        """Per student, the latest submission, or the latest on time (else the latest)."""
        course = self.require_staff(caller, course_id, "collect submissions")
        _bad_id(check_assignment_id, assignment_id)
        if student_id:
            _bad_id(check_student_id, student_id)
        grace = dt.timedelta(minutes=course.late_policy.grace_minutes)
        with self._session() as s:
            q = select(Submission).where(Submission.course_id == course_id,
                                         Submission.assignment_id == assignment_id)
            if student_id:
                q = q.where(Submission.student_id == student_id)
            rows = s.scalars(q.order_by(Submission.student_id, Submission.submitted_at, Submission.id)).all()
        by_student: dict[str, list[Submission]] = {}
        for r in rows:
            by_student.setdefault(r.student_id, []).append(r)
        chosen = []
        for student, subs in sorted(by_student.items()):
            pick = subs[-1]
            if before_duedate:
                due = course.due_for(assignment_id, student) or fallback_due
                if due is not None:
                    on_time = [x for x in subs if x.submitted_at <= due + grace]
                    if on_time:
                        pick = on_time[-1]
            chosen.append(self._submission_info(pick) | {"submission_count": len(subs)})
        return chosen

    def collection_archive(self, caller: Caller, course_id: str, assignment_id: str,
                           ids: Iterable[int]) -> tuple[list[dict], bytes]:
        """A tar of the given submissions, each under `<id>/` with timestamp.txt and
        submission_secret.txt, as nbgrader's collect leaves them in `submitted/`."""
        infos, chunks = self.collection_stream(caller, course_id, assignment_id, ids)
        return infos, b"".join(chunks)

    def collection_stream(self, caller: Caller, course_id: str, assignment_id: str,
                          ids: Iterable[int]) -> tuple[list[dict], Iterator[bytes]]:
        """`collection_archive` as chunks: one query and one event for all the ids, then each blob
        is read (checksum verified) and its files re-headed under `<id>/` without unpacking them,
        while the chunks before it are on their way (bounded memory for any number of ids).
        A blob that fails its checksum mid-stream ends the stream early; the client sees a
        truncated archive and fails."""
        self.require_staff(caller, course_id, "collect submissions")
        _bad_id(check_assignment_id, assignment_id)
        wanted = sorted({int(i) for i in ids})
        with self._session() as s:
            rows = s.scalars(select(Submission).where(Submission.id.in_(wanted))
                             .order_by(Submission.id)).all() if wanted else []
            if len(rows) != len(wanted) or any(
                (r.course_id, r.assignment_id) != (course_id, assignment_id) for r in rows
            ):
                raise ServiceError(404, "Some of the requested submissions do not exist in this assignment.")
            infos = [self._submission_info(r) for r in rows]
            stored = [(r.id, r.blob_path, r.sha256, r.timestamp, r.secret, r.environment, r.kernel) for r in rows]
            self._event(s, caller, course_id, assignment_id, "collected", {"ids": wanted})
            self._commit(s)
        return infos, tar_stream(self._collected_members(infos, stored))

    def _collected_members(self, infos: list[dict], stored: list[tuple]) -> Iterator[tuple[str, bytes | memoryview]]:
        yield "manifest.json", json.dumps(infos).encode()
        for sub_id, blob_path, sha256, timestamp, secret, environment, kernel in stored:
            for name, content in stored_members(self.store.read(blob_path, sha256)):
                yield f"{sub_id}/{name}", content
            yield f"{sub_id}/timestamp.txt", timestamp.encode()
            yield f"{sub_id}/submission_secret.txt", secret.encode()
            if environment:  # for the autograder's parity check
                yield f"{sub_id}/{envparity.RECORD_FILE}", envparity.Recorded(environment, kernel).to_bytes()

    def submission_files(self, submission: dict) -> dict[str, bytes]:
        """The files of one submission (for autograde jobs), checksum verified."""
        return read_archive(self.store.read(submission["blob_path"], submission["sha256"]), _TRUSTED)

    # --- feedback --------------------------------------------------------------------------
    def release_feedback(
        self, caller: Caller, course_id: str, assignment_id: str, student_id: str, timestamp: str,
        data: bytes, secret: str | None = None,
    ) -> dict:
        course = self.require_staff(caller, course_id, "release feedback")
        _bad_id(check_assignment_id, assignment_id)
        _bad_id(check_student_id, student_id)
        files = self._read(data)
        for name in files:
            if "/" in name or not name.endswith(".html"):
                raise ServiceError(422, f"feedback must be <notebook>.html files, got {name!r}")
            _bad_id(check_notebook_id, name[: -len(".html")])
        if not getattr(course, "show_hidden_tests_in_feedback", False):
            files = strip_feedback_files(files)  # nbgrader#1363: hidden tests stay hidden
        with self._session() as s:
            sub = s.scalars(select(Submission).where(
                Submission.course_id == course_id, Submission.assignment_id == assignment_id,
                Submission.student_id == student_id, Submission.timestamp == timestamp,
            )).first()
            if sub is None:
                raise ServiceError(404, f"{student_id} has no submission of {assignment_id!r} at {timestamp!r}.")
            if secret is not None and not hmac.compare_digest(secret.strip().encode(), sub.secret.encode()):
                raise ServiceError(409, "This feedback was generated for a different submission "
                                        "(submission_secret.txt does not match).")
            stored, old_blobs = [], []
            existing = {f.notebook_id: f for f in sub.feedback}
            now = self.clock()
            try:
                for name, content in files.items():
                    nb = name[: -len(".html")]
                    blob = self._put(course_id, "feedback", content, suffix=".html")
                    stored.append(blob.path)
                    row = existing.get(nb)
                    if row is None:
                        s.add(Feedback(submission_id=sub.id, notebook_id=nb, blob_path=blob.path,
                                       sha256=blob.sha256, size=blob.size, released_at=now,
                                       released_by=caller.name))
                    else:
                        old_blobs.append(row.blob_path)
                        row.blob_path, row.sha256, row.size = blob.path, blob.sha256, blob.size
                        row.released_at, row.released_by = now, caller.name
                self._event(s, caller, course_id, assignment_id, "feedback_released",
                            {"student_id": student_id, "timestamp": timestamp, "notebooks": sorted(files)})
                s.commit()
            except BaseException:
                s.rollback()
                for p in stored:
                    self.store.delete(p)
                raise
        for p in old_blobs:
            self.store.delete(p)
        return {"student_id": student_id, "timestamp": timestamp, "notebooks": sorted(n[:-5] for n in files)}

    def feedback_archive(self, caller: Caller, course_id: str, assignment_id: str,
                         student_id: str | None = None) -> bytes:
        """The caller's feedback (staff: any student's) for an assignment, as `<id>/<nb>.html` plus
        a manifest mapping submission ids to timestamps."""
        self.require_member(caller, course_id)
        _bad_id(check_assignment_id, assignment_id)
        student = student_id or caller.name
        _bad_id(check_student_id, student)
        if student != caller.name and not caller.is_staff(course_id):
            raise ServiceError(403, "You can only fetch your own feedback.")
        with self._session() as s:
            subs = s.scalars(select(Submission).where(
                Submission.course_id == course_id, Submission.assignment_id == assignment_id,
                Submission.student_id == student,
            ).order_by(Submission.submitted_at)).all()
            manifest, members = [], []
            for sub in subs:
                if not sub.feedback:
                    continue
                manifest.append({"id": sub.id, "timestamp": sub.timestamp,
                                 "notebooks": {f.notebook_id: f.sha256 for f in sub.feedback}})
                for f in sub.feedback:
                    members.append((f"{sub.id}/{f.notebook_id}.html", self.store.read(f.blob_path, f.sha256)))
            if manifest and student == caller.name:
                self._event(s, caller, course_id, assignment_id, "feedback_fetched", None)
                self._commit(s)
        return pack([("manifest.json", json.dumps(manifest).encode()), *members])

    def events(self, caller: Caller, course_id: str, limit: int = 200) -> list[dict]:
        self.require_staff(caller, course_id, "see the exchange log")
        with self._session() as s:
            rows = s.scalars(select(Event).where(Event.course_id == course_id)
                             .order_by(Event.at.desc(), Event.id.desc()).limit(limit)).all()
            return [{"at": r.at.isoformat(), "actor": r.actor, "assignment_id": r.assignment_id,
                     "action": r.action, "detail": r.detail} for r in rows]

    def sweep_orphans(self, older_than: float = 3600) -> int:
        """Delete stored blobs that no row refers to (left by a crash or a commit in doubt) and that
        are older than `older_than` seconds, so an upload still being committed is never touched."""
        import time

        with self._session() as s:
            known = set(s.scalars(select(Release.blob_path)).all())
            known |= set(s.scalars(select(Submission.blob_path)).all())
            known |= set(s.scalars(select(Feedback.blob_path)).all())
        cutoff = time.time() - older_than
        removed = 0
        blobs = self.store.root / "blobs"
        for path in blobs.rglob("*"):
            if path.is_file() and str(path.relative_to(self.store.root)) not in known:
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    # --- helpers ---------------------------------------------------------------------------
    def _session(self) -> Session:
        return self.sessions()

    def _commit(self, s: Session, blob_path: str | None = None) -> None:
        try:
            s.commit()
        except OperationalError:
            s.rollback()  # commit in doubt: the blob stays (swept later if unreferenced)
            raise ServiceError(503, "The grading database is unavailable; nothing was changed. "
                                    "Please try again in a moment.", retry_after=DB_RETRY_AFTER) from None
        except BaseException:
            s.rollback()
            if blob_path:
                self.store.delete(blob_path)
            raise

    def _put(self, course_id: str, kind: str, data: bytes, suffix: str = ".tar", sha256: str | None = None) -> Blob:
        try:
            return self.store.put(course_id, kind, data, suffix=suffix, sha256=sha256)
        except StoreFull:
            log.error("the submission store at %s is full: uploads are refused until space is freed",
                      self.store.root)
            raise ServiceError(507, "Nothing was stored: the submission store is full. Your work is still "
                                    "in your server: please tell your instructor and try again later.") from None

    def _read(self, data: bytes) -> dict[str, bytes]:
        try:
            return read_archive(data, self.limits)
        except ArchiveError as e:
            raise ServiceError(e.status, bounded(e, 500)) from None

    @staticmethod
    def _notebooks(files: dict[str, bytes]) -> list[str]:
        parsed = {name: check_notebook(name, content) for name, content in files.items() if name.endswith(".ipynb")}
        try:
            return validate_notebooks(parsed)
        except ArchiveError as e:
            raise ServiceError(e.status, bounded(e, 500)) from None
        except (ValueError, RecursionError, TypeError) as e:  # a validator tripped on the shape
            raise ServiceError(422, f"a notebook is not valid: {bounded(e, 200)}") from None

    def _event(self, s: Session, caller: Caller, course_id: str, assignment_id: str | None, action: str,
               detail: dict | None) -> None:
        s.add(Event(at=self.clock(), actor=caller.name, course_id=course_id, assignment_id=assignment_id,
                    action=action, detail=detail))

    @staticmethod
    def _active_release(s: Session, course_id: str, assignment_id: str) -> Release | None:
        return s.scalars(select(Release).where(
            Release.course_id == course_id, Release.assignment_id == assignment_id, Release.active.is_(True),
        ).order_by(Release.id.desc())).first()

    def _duplicate(self, existing: Submission, assignment_id: str, digest: str) -> dict:
        """A retried upload (same id, same assignment, same content) is acknowledged again; the
        same id for anything else is a client bug that must not silently drop this submission."""
        if existing.assignment_id != assignment_id or existing.sha256 != digest:
            raise ServiceError(409, "This upload id (X-Upload-Id) was already used for a different submission; "
                                    "nothing was stored. Submit again (a new upload id is used).")
        return self._submission_info(existing) | {"duplicate": True}

    @staticmethod
    def _by_upload(s: Session, course_id: str, student: str, upload_id: str) -> Submission | None:
        return s.scalars(select(Submission).where(
            Submission.course_id == course_id, Submission.student_id == student, Submission.upload_id == upload_id,
        )).first()

    @staticmethod
    def _release_info(r: Release) -> dict:
        return {"course_id": r.course_id, "assignment_id": r.assignment_id, "notebooks": r.notebooks,
                "sha256": r.sha256, "size": r.size, "released_at": r.released_at.isoformat(),
                "released_by": r.released_by, "active": r.active}

    @staticmethod
    def _submission_info(r: Submission, feedback: bool = False) -> dict:
        info = {
            "id": r.id, "course_id": r.course_id, "assignment_id": r.assignment_id, "student_id": r.student_id,
            "timestamp": r.timestamp, "submitted_at": r.submitted_at.isoformat(), "late": r.late,
            "seconds_late": r.seconds_late, "due_at": r.due_at.isoformat() if r.due_at else None,
            "notebooks": r.notebooks, "sha256": r.sha256, "size": r.size, "blob_path": r.blob_path,
            "environment": r.environment, "kernel": r.kernel,
        }
        if feedback:
            info["feedback"] = {f.notebook_id: f.sha256 for f in r.feedback}
        return info


def _stored_files(data: bytes) -> list[tuple[str, bytes]]:
    """Files of a stored (validated, checksum-verified) archive, without re-validating them."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                fh = tar.extractfile(member)
                out.append((member.name, fh.read() if fh else b""))
    return out


#: Stored archives were validated on the way in; reading them back only needs generous bounds.
_TRUSTED = UploadLimits(max_file_bytes=2**40, max_total_bytes=2**40, max_entries=10**6)
