"""One runner for coursehub's long-running services: the grading service, the textbook service and
the autograde queue worker start, log and stop the same way.

Each gets `--settings FILE` (default `$COURSEHUB_SETTINGS`) and `--log-level`, one log format, a
clear one-line error (exit status 1) for settings that do not validate, and one stop behaviour:
SIGTERM or SIGINT (how the hub and Kubernetes stop a service) sets a `Stop` that the service waits
on, from a thread (`stop.wait()`) or a coroutine (`await stop.wait_async()`), and then it finishes
its work in hand and exits 0. The hub-side module is here, below both layers that use it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError
from .settings import Settings, load_settings

LOG_FORMAT = "[%(levelname).1s %(asctime)s %(name)s] %(message)s"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop:
    """Set once, by a stop signal or by the service itself; waitable from threads and coroutines."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def on_stop(self, cb: Callable[[], object]) -> None:
        """Call `cb` when stopped (at once if already stopped)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(cb)
                return
        cb()

    async def wait_async(self) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        self.on_stop(lambda: loop.call_soon_threadsafe(done.set))
        await done.wait()


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The flags every service has; a service adds its own."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (default: INFO)")
    return p


def run(argv: list[str] | None, p: argparse.ArgumentParser,
        body: Callable[[argparse.Namespace, Settings, Stop], int | None]) -> int:
    """Parse `argv`, set up logging, load the settings, install the stop signals, run `body`."""
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    try:
        settings = load_settings(args.settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stop = Stop()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    try:
        return body(args, settings, stop) or 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
