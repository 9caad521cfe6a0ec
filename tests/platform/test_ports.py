"""Ports nobody chose: drawn outside the kernel's ephemeral range, from a band of one's own if set.

The class of failure this guards against: a port found free by binding to port 0 is handed out again
by the kernel, to another process's "any port" or to an outgoing connection, before our server binds
it ("Address already in use" for a grading service started a moment later).
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

import pytest
from jupyterhub.spawner import SimpleLocalProcessSpawner

from coursehub.platform import ports, up
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import load_settings
from coursehub.platform.spawner import LocalCourseSpawner


@pytest.fixture
def ephemeral(tmp_path, monkeypatch):
    """Set the kernel's ephemeral range as ports.py reads it."""
    def set_range(low: int, high: int) -> None:
        f = tmp_path / "ip_local_port_range"
        f.write_text(f"{low}\t{high}\n")
        monkeypatch.setattr(ports, "_EPHEMERAL", f)
    monkeypatch.delenv(ports.RANGE_VARIABLE, raising=False)
    return set_range


def free_run(width: int) -> int:
    """The first of `width` consecutive loopback ports that are all free now (a band for a test)."""
    return next(b for b in range(24000, 30000, width) if all(ports.is_free("127.0.0.1", b + i) for i in range(width)))


def test_ports_are_drawn_below_the_ephemeral_range(ephemeral):
    ephemeral(40000, 60999)
    assert ports.band() == (ports.LOWEST, 39999)
    drawn = {ports.free_port() for _ in range(200)}
    assert all(ports.LOWEST <= p < 40000 for p in drawn)
    assert len(drawn) > 150  # drawn at random, not the same few ports again and again


def test_a_kernel_with_a_low_ephemeral_range_gets_ports_above_it(ephemeral):
    ephemeral(1024, 60000)
    assert ports.band() == (60001, 65535)
    assert all(60001 <= ports.free_port() <= 65535 for _ in range(50))


def test_a_kernel_whose_ephemeral_range_is_everything_chooses_itself(ephemeral):
    ephemeral(1024, 65535)
    assert ports.band() is None
    port = ports.free_port()
    assert 1024 <= port <= 65535 and ports.is_free("127.0.0.1", port)


def test_the_real_kernel_range_is_read_and_never_drawn_from(monkeypatch):
    monkeypatch.delenv(ports.RANGE_VARIABLE, raising=False)
    low, high = ports.ephemeral_range()
    assert Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split() == [str(low), str(high)]
    assert not any(low <= ports.free_port() <= high for _ in range(200))


def test_a_configured_band_is_kept_and_busy_ports_in_it_are_skipped(monkeypatch):
    with ExitStack() as held:
        # a band of ten free ports, all but one then taken by listeners
        base = free_run(10)
        monkeypatch.setenv(ports.RANGE_VARIABLE, f"{base}-{base + 9}")
        for i in range(10):
            if i != 7:
                s = held.enter_context(socket.socket())
                s.bind(("127.0.0.1", base + i))
                s.listen()
        assert {ports.free_port() for _ in range(20)} == {base + 7}
        busy = held.enter_context(socket.socket())
        busy.bind(("127.0.0.1", base + 7))
        busy.listen()
        with pytest.raises(ConfigError, match=f"no free port found in {base}-{base + 9}"):
            ports.free_port()


@pytest.mark.parametrize("value", ["abc", "20000", "30000-20000", "80-90", "20000-70000", "20000-2x"])
def test_a_malformed_band_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(ports.RANGE_VARIABLE, value)
    with pytest.raises(ConfigError, match=ports.RANGE_VARIABLE) as e:
        ports.free_port()
    assert "is not a port range like 20000-20999" in str(e.value)


def test_up_draws_every_unchosen_port_from_the_band(monkeypatch, tmp_path):
    """With a band set (parallel test workers), even the hub's public port comes from it, so two
    platforms started at the same moment never both take the first free default port."""
    base = free_run(100)
    monkeypatch.setenv(ports.RANGE_VARIABLE, f"{base}-{base + 99}")
    monkeypatch.delenv("COURSEHUB_SETTINGS", raising=False)
    settings = load_settings(None, state_dir=tmp_path)
    up.choose_ports(settings, None)
    assert base <= settings.hub.port <= base + 99 and base <= settings.grading.port <= base + 99

    monkeypatch.delenv(ports.RANGE_VARIABLE)
    settings = load_settings(None, state_dir=tmp_path)
    up.choose_ports(settings, None)
    assert settings.hub.port in up.DEFAULT_PORTS or settings.hub.port >= ports.LOWEST  # 8000, or the next free
    low, high = ports.ephemeral_range()
    assert not low <= settings.grading.port <= high


async def test_the_local_spawner_draws_a_new_port_for_each_start_of_any_port(monkeypatch):
    started: list[int] = []

    async def parent_start(self):  # noqa: ANN202 - JupyterHub's signature
        started.append(self.port)
        return ("127.0.0.1", self.port)

    async def nothing(*args):  # noqa: ANN202
        return []

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", parent_start)
    monkeypatch.setattr(LocalCourseSpawner, "_isolate", nothing)
    monkeypatch.setattr(LocalCourseSpawner, "_until_listening", nothing)
    monkeypatch.setattr(LocalCourseSpawner, "selected_course", lambda self: None)
    base = free_run(100)
    monkeypatch.setenv(ports.RANGE_VARIABLE, f"{base}-{base + 99}")
    sp = LocalCourseSpawner(homes_dir="/h", cmd=["jupyterhub-singleuser"])
    for _ in range(5):
        await sp.start()
    assert all(base <= p <= base + 99 for p in started) and len(set(started)) > 1  # drawn again each start
    # a port the operator chose is kept as it is
    chosen = LocalCourseSpawner(homes_dir="/h", cmd=["jupyterhub-singleuser"], port=base + 5)
    started.clear()
    await chosen.start()
    await chosen.start()
    assert started == [base + 5, base + 5]

