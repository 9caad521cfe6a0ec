"""Free ports for what the platform starts on this machine, picked where nothing else picks.

A port found free by binding to port 0 comes from the kernel's ephemeral range, the same range every
outgoing connection and every other "any free port" takes its local port from; between the check and
the server's own bind, another process may get it ("Address already in use"). So ports nobody chose
are drawn at random from below the ephemeral range instead, and `COURSEHUB_PORT_RANGE=LOW-HIGH`
narrows that to a band of one's own, as parallel test workers do, so two platforms never draw the
same port. With the variable set, the hub's public port comes from the band too (see up.py).
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from .errors import ConfigError, Problem

#: The environment variable naming the band (`LOW-HIGH`, inclusive).
RANGE_VARIABLE = "COURSEHUB_PORT_RANGE"
#: The lowest port drawn by default: above the well-known and most registered service ports.
LOWEST = 20000
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_TRIES = 200


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ports nobody chose (Linux's default where it cannot be read)."""
    try:
        low, high = (int(x) for x in _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def configured_band() -> tuple[int, int] | None:
    """`COURSEHUB_PORT_RANGE` as (low, high), or None when unset; a malformed value is a clear error."""
    raw = os.environ.get(RANGE_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        low, high = (int(x) for x in raw.split("-"))
    except ValueError:
        low = high = -1
    if not 1024 <= low <= high <= 65535:
        raise ConfigError([Problem(Path("environment"), RANGE_VARIABLE, f"{raw!r} is not a port range like 20000-20999 "
                                   "(two ports from 1024 to 65535, the lower first)")])
    return low, high


def band() -> tuple[int, int] | None:
    """Where free ports are drawn: the configured band, else from LOWEST to below the ephemeral range
    (or above it, on a kernel configured with a low one). None when the ephemeral range leaves no
    room of at least 1,000 ports either side: then the kernel chooses, as with port 0."""
    chosen = configured_band()
    if chosen is not None:
        return chosen
    ephemeral_low, ephemeral_high = ephemeral_range()
    if ephemeral_low - LOWEST >= 1000:
        return LOWEST, ephemeral_low - 1
    if 65535 - ephemeral_high >= 1000:
        return ephemeral_high + 1, 65535
    return None


def is_free(ip: str, port: int) -> bool:
    """Nobody has `port` on `ip`. Checked with SO_REUSEADDR as servers bind, so a port whose last
    connection is only in TIME_WAIT counts as free."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def free_port(ip: str = "127.0.0.1") -> int:
    """A port free on `ip` now, drawn at random from `band()`."""
    where = band()
    if where is None:
        with socket.socket() as s:
            s.bind((ip, 0))
            return s.getsockname()[1]
    low, high = where
    rng = random.SystemRandom()
    for _ in range(_TRIES):
        port = rng.randint(low, high)
        if is_free(ip, port):
            return port
    raise ConfigError([Problem(Path("environment"), RANGE_VARIABLE, f"no free port found in {low}-{high} after {_TRIES} "
                               "tries; set a wider range")])
