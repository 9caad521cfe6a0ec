"""The LMS sync as the grading service runs it: a sender built from the settings, on a timer.

    sender = make_sender(settings)            # raises LmsNotConfigured with the reason
    start_background_sync(settings, every=30)  # inside a running tornado/asyncio loop
"""

from __future__ import annotations

import logging
from functools import lru_cache
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


def make_sender(settings: Any) -> Sender:
    from coursehub.platform.lti.store import LtiStore

    platforms, key = lms_access(settings)
    source = StoreServices(LtiStore(lti_store_url(settings)), platforms)
    return Sender(outbox_sessions(settings), source, ServiceClient(TokenClient(key)))


_started: dict[str, Any] = {}
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


def start_background_sync(settings: Any, every: float = 30.0) -> bool:
    """Send due scores every `every` seconds in the current IOLoop (once per process).

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
    sender: Sender | None = None

    async def tick() -> None:
        nonlocal sender
        try:
            if sender is None:
                sender = shared_sender(settings)
            out = await sender.send_due()
            if out:
                log.info("grade sync: %s", out)
        except LmsNotConfigured as e:
            log.debug("grade sync waits: %s", e)
        except Exception:  # noqa: BLE001 - keep the timer alive; the rows keep their state
            log.exception("grade sync round failed")

    cb = PeriodicCallback(tick, every * 1000)
    cb.start()
    _started[url] = cb
    return True


async def sync_course_roster(settings: Any, course_id: str, gradebook_url: str, groups: Any = None) -> list:
    """NRPS roster sync of every LMS context of a course into its gradebook (and `groups`, a
    RosterSink for the hub's course groups, when the service may manage groups). Returns reports."""
    from coursehub.platform.lti.store import LtiStore

    from .roster import GradebookSink, StoreIdentities, sync_roster

    platforms, key = lms_access(settings)
    store = LtiStore(lti_store_url(settings))
    try:
        contexts = StoreServices(store, platforms).for_course(course_id)
        if not any(c.nrps_url for c in contexts):
            raise LmsNotConfigured("no launch in this course carried the LMS's roster service (NRPS) yet")
        client = ServiceClient(TokenClient(key))
        sink = GradebookSink(gradebook_url, groups=groups)
        return [await sync_roster(outbox_sessions(settings), client, svc, sink, StoreIdentities(store))
                for svc in contexts if svc.nrps_url]
    finally:
        store.dispose()
