"""Loopback ports and waiting for servers."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from coursehub.platform import ports


def free_port() -> int:
    """A loopback port free now, for a server started next: drawn as the platform draws its own
    (outside the kernel's ephemeral range, in this test worker's band; platform/ports.py)."""
    return ports.free_port()


def wait_until(check: Callable[[], object], timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Call `check` until it returns something truthy (returned) or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return 200 <= r.status < 400
    except OSError:
        return False
