"""Open-loop arrivals with a live progress view: person i starts at start + i/(n-1) of the window
whether or not the service keeps up (a slow service must not slow the arrivals down, or the test
would hide the queueing it is there to find). Bounded: nothing starts after the window, and the
run stops waiting at a hard deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from .report import Outcome

#: job(i, scheduled_at, deadline) -> Outcome; times are time.monotonic().
Job = Callable[[int, float, float], Outcome]


def schedule(n: int, over: float, start: float) -> list[float]:
    """Evenly spaced arrivals across the window (all at once when `over` is 0)."""
    if n == 1 or over <= 0:
        return [start] * n
    return [start + over * i / (n - 1) for i in range(n)]


def run_open_loop(n: int, over: float, job: Job, *, concurrency: int, hard_limit: float,
                  desc: str, progress: bool) -> tuple[list[Outcome], float]:
    """Run `job` for 0..n-1 on its schedule; (outcomes in completion order, wall seconds). A job
    still running at `hard_limit` seconds counts as failed ("still running at the hard time limit")."""
    from tqdm import tqdm

    start = time.monotonic() + 0.2
    deadline = start + hard_limit
    times = schedule(n, over, start)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    closed = threading.Event()
    bar = tqdm(total=n, desc=desc, unit=" people", disable=not progress, dynamic_ncols=True, leave=True)

    def one(i: int) -> Outcome:
        at = times[i]
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            out = job(i, at, deadline)
        except Exception as e:  # noqa: BLE001 - a bug in one person's run is one failure, not the run
            out = Outcome(ok=False, reason=f"load test error: {type(e).__name__}")
        with lock:
            if closed.is_set():
                return out
            out.done_at = time.monotonic() - start
            outcomes.append(out)
            bar.update(1)
            failed = sum(not o.ok for o in outcomes)
            bar.set_postfix(ok=len(outcomes) - failed, failed=failed, refresh=False)
        return out

    pool = ThreadPoolExecutor(max(1, min(concurrency, n)), thread_name_prefix="loadtest")
    futures = {pool.submit(one, i) for i in range(n)}
    pending = futures
    while pending and time.monotonic() < deadline:
        _done, pending = wait(pending, timeout=min(1.0, max(0.0, deadline - time.monotonic())),
                              return_when=FIRST_COMPLETED)
    pool.shutdown(wait=False, cancel_futures=True)
    with lock:
        closed.set()
        result = list(outcomes)
        result += [Outcome(ok=False, reason="still running at the hard time limit")] * (n - len(result))
    bar.close()
    return result, time.monotonic() - start
