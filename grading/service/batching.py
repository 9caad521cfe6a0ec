"""Group commit: many submissions' rows in one transaction, each acknowledged only once it is durable.

At a deadline every upload ends in a small write transaction (the submission row and its event).
One transaction per upload means one commit (one fsync of SQLite's WAL, one WAL flush of
PostgreSQL) per upload, and on SQLite the threads of the pool queue for the single write lock in
SQLite's busy handler, which sleeps in steps of up to 100 ms. `GroupCommitter` has one writer
thread: a request thread hands it a unit of work and waits; the writer takes everything that is
waiting (up to `max_batch`), runs each unit in one session and commits once. Each waiting request
learns the outcome of the commit that carried its row: success only after that commit returned
(durability before acknowledgement is unchanged: the blob was fsynced before the row was queued);
a failed commit is reported to every request of the batch.

If the batch's commit fails with an IntegrityError (a duplicate that another process inserted
between the check and the commit), the batch is rolled back and each unit is run again in its own
transaction, so only the unit at fault sees the error. Other errors fail the whole batch: nothing
of it was committed (or, for a lost connection, the commit is in doubt, which the caller reports).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger("coursehub.grading.exchange")

#: Arrival times kept for `recent_rate` (a minute at 300/s).
ARRIVALS_KEPT = 20_000

#: A unit of work: adds rows to the session (may query it); its return value is the request's result.
Unit = Callable[[Session], Any]


class GroupCommitter:
    """One writer thread committing queued units of work in batches."""

    def __init__(self, sessions: Callable[[], Session], max_batch: int = 64, name: str = "grading-commit"):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.sessions = sessions
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Unit, Future] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        #: Batches committed and units in them (for tests and the benchmark's notes).
        self.batches = 0
        self.units = 0
        #: When recent units were queued (monotonic), for `recent_rate`.
        self._arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)

    def run(self, unit: Unit, timeout: float | None = None) -> Any:
        """Run `unit` in the next batch and return its result once that batch is committed; raises
        what the unit or the commit raised. Blocks the calling (pool) thread, never the event loop."""
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.put((unit, fut))
            self._arrivals.append(time.monotonic())
        return fut.result(timeout)

    def recent_rate(self, window: float) -> float:
        """Units queued per second over the last `window` seconds: how hard a deadline is pressing
        (background work such as the LMS sync waits while it is high)."""
        cutoff = time.monotonic() - window
        n = 0
        with self._lock:  # run() appends under the same lock
            for t in reversed(self._arrivals):
                if t < cutoff:
                    break
                n += 1
        return n / window

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    # --- the writer thread -------------------------------------------------------------------
    def _loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._commit_batch(batch)
            except BaseException as e:  # noqa: BLE001 - never let the writer die with requests waiting
                log.exception("group commit failed unexpectedly")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)

    def _commit_batch(self, batch: list[tuple[Unit, Future]]) -> None:
        live = [(unit, fut) for unit, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        if len(live) == 1:
            self._commit_alone(*live[0])
            return
        results: list[tuple[Future, Any]] = []
        failed: list[tuple[Future, BaseException]] = []
        s = self.sessions()
        try:
            for unit, fut in live:
                try:
                    results.append((fut, unit(s)))
                except IntegrityError:
                    raise  # the session is unusable now: the batch is redone one by one
                except Exception as e:  # noqa: BLE001 - the unit's own refusal (e.g. a ServiceError)
                    # A unit that raised before adding anything leaves the session as it was; one
                    # that raised after adding rows must not commit them: redo one by one.
                    if s.new or s.dirty or s.deleted:
                        raise _Redo() from e
                    failed.append((fut, e))
            s.commit()
        except (IntegrityError, _Redo):
            s.rollback()
            s.close()
            for unit, fut in live:
                self._commit_alone(unit, fut)
            return
        except BaseException as e:  # noqa: BLE001 - the whole batch failed: tell every waiting request
            s.rollback()
            s.close()
            for _, fut in live:
                fut.set_exception(e)
            return
        s.close()
        self.batches += 1
        self.units += len(results)
        for fut, result in results:
            fut.set_result(result)
        for fut, exc in failed:
            fut.set_exception(exc)

    def _commit_alone(self, unit: Unit, fut: Future) -> None:
        s = self.sessions()
        try:
            result = unit(s)
            s.commit()
        except BaseException as e:  # noqa: BLE001 - reported to the one waiting request
            s.rollback()
            fut.set_exception(e)
            return
        finally:
            s.close()
        self.batches += 1
        self.units += 1
        fut.set_result(result)


class _Redo(Exception):
    """A unit failed after adding rows to the batch's session: redo the batch one unit at a time."""
