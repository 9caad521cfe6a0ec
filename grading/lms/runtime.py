"""The LMS sync as the grading service runs it: a sender built from the settings, on two timers.

    sender = make_sender(settings)            # raises LmsNotConfigured with the reason
    start_background_sync(settings)           # inside a running tornado/asyncio loop

- every `grading.lms.send_interval_seconds`: new submissions become `Submitted`/`Pending`, changed
  gradebook grades are queued with honest progress (`progress.py`), and due scores are sent;
- every `grading.lms.roster_interval_seconds`, per course with an LMS link: the NRPS roster into
  hub groups (leavers out: staff at once, students after `grading.lms.student_grace_days`) and the
  gradebook, each assignment's line item created or updated from course.yaml, and names from
  launches into nbgrader's Student table (`course_round`). The dashboard's "Update roster" runs the
  roster part on demand.
- both wait while a deadline presses (more than `RUSH_RATE` submissions per second arriving), for
  at most `MAX_DEFERRAL` seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from .outbox import Sender
from .services import ServiceClient
from .sources import StoreServices, load_tool_key, lti_store_url, platforms_from_settings
from .tokens import TokenClient

log = logging.getLogger("coursehub.grading.lms")


class LmsNotConfigured(RuntimeError):
    pass


@lru_cache(maxsize=8)
def _engine(url: str):  # noqa: ANN202
    from coursehub.grading.db import make_engine

    return make_engine(url)


def outbox_sessions(settings: Any) -> sessionmaker:
    """Sessions on the grading database, where the lms_* tables live (alembic branch "lms")."""
    return sessionmaker(_engine(settings.grading_db_url()), expire_on_commit=False)


def lms_access(settings: Any) -> tuple[Any, Any]:
    """The registered platforms and the tool's private key, or LmsNotConfigured saying which is missing."""
    platforms = platforms_from_settings(settings)
    if not platforms:
        raise LmsNotConfigured("no LMS platform is registered (settings: auth.lti.platforms)")
    try:
        return platforms, load_tool_key(settings.state_dir)
    except FileNotFoundError as e:
        raise LmsNotConfigured(str(e)) from None


class _Defaults:
    send_interval_seconds = 30.0
    roster_interval_seconds = 3600.0
    student_grace_days = 14.0


def sync_settings(settings: Any) -> Any:
    """`grading.lms` of the settings (defaults for settings objects without it)."""
    return getattr(getattr(settings, "grading", None), "lms", None) or _Defaults()


class CatalogSpec:
    """(title, points) of an assignment from course.yaml, re-read at most every `ttl` seconds so a
    changed title or points reach the LMS line item without a restart."""

    def __init__(self, courses_dir: Path | None, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.courses_dir = courses_dir
        self.ttl = ttl
        self.clock = clock
        self._loaded_at: float | None = None
        self._catalog: Any = None

    def catalog(self) -> Any:
        if self.courses_dir is None:
            return None
        if self._loaded_at is None or self.clock() - self._loaded_at >= self.ttl:
            from coursehub.platform.courses import load_catalog

            try:
                self._catalog = load_catalog(Path(self.courses_dir))
            except Exception:  # noqa: BLE001 - a broken course.yaml: keep the last good catalog
                log.exception("course catalog unreadable; line items keep their last title and points")
            self._loaded_at = self.clock()
        return self._catalog

    def __call__(self, course_id: str, assignment: str) -> tuple[str, float] | None:
        catalog = self.catalog()
        course = catalog.get(course_id) if catalog is not None else None
        a = next((a for a in course.assignments if a.id == assignment), None) if course else None
        if a is None or not a.points:
            return None
        return (a.title or a.id, float(a.points))


def wanted_lineitems(course: Any) -> list[Any]:
    """Every assignment of `course` that has points: its line item's label and maximum."""
    from .lineitems import Wanted

    return [Wanted(a.id, a.title or a.id, float(a.points)) for a in course.assignments if a.points]


def make_sender(settings: Any) -> Sender:
    from coursehub.platform.lti.store import LtiStore

    platforms, key = lms_access(settings)
    source = StoreServices(LtiStore(lti_store_url(settings)), platforms)
    return Sender(outbox_sessions(settings), source, ServiceClient(TokenClient(key)),
                  lineitem_spec=CatalogSpec(getattr(settings, "courses_dir", None)))


_started: dict[str, Any] = {}
#: Seconds after the service's start before the first course round.
FIRST_ROUND_AFTER = 120.0
_senders: dict[str, Sender] = {}


def shared_sender(settings: Any) -> Sender:
    """The one sender of this process for the settings' grading database: the timer and "Sync
    now" share it, and with it the client's Retry-After gate (rows are also claimed in the
    database, so a second process never double-sends either)."""
    url = settings.grading_db_url()
    sender = _senders.get(url)
    if sender is None:
        sender = _senders[url] = make_sender(settings)
    return sender


_catalogs: dict[str, CatalogSpec] = {}


def _catalog(settings: Any) -> Any:
    folder = getattr(settings, "courses_dir", None)
    spec = _catalogs.setdefault(str(folder), CatalogSpec(folder))
    return spec.catalog()


def _linked_courses(settings: Any) -> list[Any]:
    """Courses of the catalog that someone launched from an LMS (the LTI store has rows for them)."""
    catalog = _catalog(settings)
    if catalog is None:
        return []
    from coursehub.platform.lti.store import LtiStore

    store = LtiStore(lti_store_url(settings))
    try:
        return [c for c in catalog if store.services(course=c.id)]
    finally:
        store.dispose()


def _gradebook_signature(url: str) -> tuple | None:
    """What changes when an SQLite gradebook is written (file and WAL size and mtime); None for a
    server database, which is then read every time."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    sig = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append(None)
    return tuple(sig)


#: Gradebook signatures at the last read, per gradebook URL (this process).
_read_at: dict[str, tuple] = {}


def queue_progress(settings: Any, course: Any, now: dt.datetime | None = None) -> int:
    """Blocking: submissions as `Submitted`/`Pending`, then the gradebook's changed grades (only
    when the gradebook changed since the last read: the formgrader writes it directly)."""
    from coursehub.grading.gradebook import course_gradebook_url

    from .gradesync import enqueue_changes
    from .progress import submission_progress

    now = now or dt.datetime.now(dt.UTC)
    labels = {a.id: a.title or a.id for a in course.assignments}
    points = {a.id: float(a.points) for a in course.assignments if a.points}
    with outbox_sessions(settings)() as s:
        queued = submission_progress(s, course.id, points, labels)
    url = course_gradebook_url(settings, course.id)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return queued
    sig = _gradebook_signature(url)
    if sig is not None and _read_at.get(url) == sig:
        return queued
    from coursehub.grading.export import load_grades

    try:
        grades = load_grades(db_url=url, course=course)
    except Exception:  # noqa: BLE001 - no gradebook yet, or one being created
        log.debug("no grades to queue for %s yet", course.id, exc_info=True)
        return queued
    with outbox_sessions(settings)() as s:
        queued += enqueue_changes(s, course.id, grades.long, now, labels)
    if sig is not None:
        _read_at[url] = sig
    return queued


async def sync_course_lineitems(settings: Any, course: Any, now: dt.datetime | None = None) -> dict[str, str]:
    """Every assignment's line item in each LMS context of the course: created if missing, updated
    (PUT) when course.yaml's title or points changed. Returns {assignment: outcome} of the last context."""
    from coursehub.platform.lti.store import LtiStore

    from .lineitems import sync_lineitems

    platforms, key = lms_access(settings)
    store = LtiStore(lti_store_url(settings))
    try:
        contexts = [c for c in StoreServices(store, platforms).for_course(course.id) if c.lineitems_url]
    finally:
        store.dispose()
    client = shared_sender(settings).client
    out: dict[str, str] = {}
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with outbox_sessions(settings)() as s:
        for svc in contexts:
            out.update(await sync_lineitems(s, client, svc, wanted_lineitems(course), course_id=course.id, now=now))
    return out


async def course_round(settings: Any, course: Any) -> dict[str, Any]:
    """The roster timer's work for one course; each part's failure is logged, the others still run."""
    from coursehub.grading.gradebook import course_gradebook_url

    done: dict[str, Any] = {}
    for name, step in (("roster", lambda: sync_course_roster(settings, course.id, course_gradebook_url(
                           settings, course.id))),
                       ("lineitems", lambda: sync_course_lineitems(settings, course)),
                       ("names", lambda: asyncio.to_thread(sync_course_names, settings, course.id))):
        try:
            done[name] = await step()
        except LmsNotConfigured as e:
            done[name] = str(e)
        except Exception as e:  # noqa: BLE001 - keep the timer alive
            log.exception("LMS %s sync of %s failed", name, course.id)
            done[name] = f"failed: {type(e).__name__}"
    return done


def sync_course_names(settings: Any, course_id: str, since: float | None = None) -> int:
    """Blocking: names, emails and LMS ids from launches and the roster into the course's gradebook
    (`since`: only people who launched after that time, epoch seconds; the send timer's quick pass)."""
    from coursehub.grading.gradebook import course_gradebook_url, upsert_students
    from coursehub.platform.lti.store import LtiStore

    from .names import course_students

    store = LtiStore(lti_store_url(settings))
    try:
        students = course_students(store, outbox_sessions(settings), course_id, since=since)
    finally:
        store.dispose()
    return upsert_students(course_gradebook_url(settings, course_id), students) if students else 0


#: Submissions per second (over `RUSH_WINDOW` seconds) above which the LMS sync waits: a deadline.
RUSH_RATE = 5.0
RUSH_WINDOW = 10.0
#: The LMS sync waits for a deadline at most this long, then runs anyway.
MAX_DEFERRAL = 600.0
#: The clock of the deferral (a seam for tests).
_clock = time.monotonic


def start_background_sync(settings: Any, every: float | None = None,
                          submission_rate: Callable[[float], float] | None = None) -> bool:
    """Start the two timers in the current IOLoop (once per process): sending every `every` seconds
    (default `grading.lms.send_interval_seconds`), course rounds every `roster_interval_seconds`.

    `submission_rate(window)`: submissions per second arriving at the service (its group
    committer's). While it is above `RUSH_RATE`, both timers skip their turn, for at most
    `MAX_DEFERRAL` seconds in a row: telling the LMS "Submitted" and reading rosters can wait a few
    minutes, while the grading service's one process is needed for the deadline itself (each
    progress row costs it a few milliseconds: a query, a row, a request to the LMS).

    The grading service calls this at start. The tool key is made by the hub, which may not have
    done so yet: the timer builds its sender on the first tick that finds everything it needs.
    Returns False (and starts nothing) when no LMS platform is registered at all.
    """
    from tornado.ioloop import PeriodicCallback

    url = settings.grading_db_url()
    if url in _started:
        return True
    if not platforms_from_settings(settings):
        log.info("LMS grade sync is off: no LMS platform is registered (settings: auth.lti.platforms)")
        return False
    conf = sync_settings(settings)
    every = every if every is not None else conf.send_interval_seconds
    sender: Sender | None = None
    launches_seen: dict[str, float] = {}  # course -> time of the last names pass (launch names)
    deferred_since: float | None = None

    def deadline_pressing(quiet: bool = False) -> bool:
        """True while submissions arrive faster than RUSH_RATE, for at most MAX_DEFERRAL seconds."""
        nonlocal deferred_since
        if submission_rate is None:
            return False
        rate = submission_rate(RUSH_WINDOW)
        if rate < RUSH_RATE:
            deferred_since = None
            return False
        now = _clock()
        if deferred_since is None:
            deferred_since = now
        if now - deferred_since >= MAX_DEFERRAL:
            if not quiet:
                log.warning("LMS sync runs although submissions still arrive at %.0f/s: it waited %.0f s",
                            rate, now - deferred_since)
            return False
        if not quiet:
            log.info("LMS sync waits: submissions arrive at %.0f/s (a deadline)", rate)
        return True

    async def tick() -> None:
        nonlocal sender
        if deadline_pressing():
            return
        try:
            if sender is None:
                sender = shared_sender(settings)
            for course in await asyncio.to_thread(_linked_courses, settings):
                try:
                    started = time.time()
                    await asyncio.to_thread(sync_course_names, settings, course.id, launches_seen.get(course.id))
                    launches_seen[course.id] = started - 1  # store times and ours may differ a little
                    await asyncio.to_thread(queue_progress, settings, course)
                except Exception:  # noqa: BLE001 - one course must not hold up the others
                    log.exception("names or grades of %s not queued", course.id)
            out = await sender.send_due(pause=lambda: deadline_pressing(quiet=True))
            if out:
                log.info("grade sync: %s", out)
        except LmsNotConfigured as e:
            log.debug("grade sync waits: %s", e)
        except Exception:  # noqa: BLE001 - keep the timer alive; the rows keep their state
            log.exception("grade sync round failed")

    async def rounds() -> None:
        if deadline_pressing():
            return
        try:
            for course in await asyncio.to_thread(_linked_courses, settings):
                log.info("LMS round for %s: %s", course.id, await course_round(settings, course))
        except Exception:  # noqa: BLE001
            log.exception("LMS roster round failed")

    cb = PeriodicCallback(tick, every * 1000)
    cb.start()
    _started[url] = cb
    if conf.roster_interval_seconds > 0:
        rc = PeriodicCallback(rounds, conf.roster_interval_seconds * 1000)
        rc.start()
        _started[url + " roster"] = rc
        # a first round soon after start, so that restarts never postpone rosters indefinitely
        from tornado.ioloop import IOLoop

        IOLoop.current().call_later(min(FIRST_ROUND_AFTER, conf.roster_interval_seconds), rounds)
    return True


async def sync_course_roster(settings: Any, course_id: str, gradebook_url: str, groups: Any = None,
                             now: dt.datetime | None = None) -> list:
    """NRPS roster sync of every LMS context of a course into its gradebook and the hub's course
    groups (`groups`, default: the hub API with the service's own token when running under the hub).
    Returns reports."""
    from coursehub.platform.lti.store import LtiStore

    from .hubgroups import HubGroups
    from .roster import GradebookSink, StoreIdentities, sync_roster

    platforms, key = lms_access(settings)
    groups = groups if groups is not None else HubGroups.from_env()
    grace = dt.timedelta(days=sync_settings(settings).student_grace_days)
    store = LtiStore(lti_store_url(settings))
    try:
        contexts = StoreServices(store, platforms).for_course(course_id)
        if not any(c.nrps_url for c in contexts):
            raise LmsNotConfigured("no launch in this course carried the LMS's roster service (NRPS) yet")
        client = ServiceClient(TokenClient(key))
        sink = GradebookSink(gradebook_url, groups=groups)
        return [await sync_roster(outbox_sessions(settings), client, svc, sink, StoreIdentities(store), now=now,
                                  grace=grace)
                for svc in contexts if svc.nrps_url]
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    """`python -m coursehub.grading.lms.runtime [--settings FILE] COURSE...`: one course round now
    (roster into groups and gradebook, line items, names), as the timer does; prints the outcome."""
    import argparse

    from coursehub.platform.settings import load_settings

    p = argparse.ArgumentParser(prog="python -m coursehub.grading.lms.runtime", description=main.__doc__)
    p.add_argument("--settings", type=Path)
    p.add_argument("courses", nargs="+", metavar="COURSE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.settings)
    catalog = _catalog(settings)
    failed = 0
    for course_id in args.courses:
        course = catalog.get(course_id) if catalog is not None else None
        if course is None:
            print(f"{course_id}: no such course in {settings.courses_dir}")
            failed += 1
            continue
        print(f"{course_id}: {asyncio.run(course_round(settings, course))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
