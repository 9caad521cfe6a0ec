"""Where the CPU went during a load test on this machine: each process's CPU time from /proc,
sampled in a thread, grouped by what the process is (hub, grading service, proxy, load-test client,
PostgreSQL, anything else), and read back for a wall-clock window (the rush itself, from the
load test's report). Linux only; 10 ms resolution (clock ticks)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

#: (group, what its command line contains), first match wins.
GROUPS = [
    ("client", "loadtest"),
    ("grading service", "coursehub.grading.service"),
    ("hub", "run_hub"),
    ("hub", "jupyterhub "),
    ("proxy", "configurable-http-proxy"),
    ("PostgreSQL", "postgres"),
]


def _group(cmdline: str) -> str:
    return next((name for name, needle in GROUPS if needle in cmdline), "other")


def _read(pid: str) -> tuple[int, float] | None:
    """(start time in ticks, CPU seconds) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK


class CpuSampler:
    """Samples every process's CPU time every `every` seconds until stopped."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.samples: list[tuple[float, dict[tuple[str, int], float]]] = []
        self._groups: dict[tuple[str, int], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            now = time.time()
            snap: dict[tuple[str, int], float] = {}
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                got = _read(pid)
                if got is None:
                    continue
                key = (pid, got[0])  # a pid reused by a new process is a new key
                if key not in self._groups:
                    try:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    except OSError:
                        continue
                    self._groups[key] = _group(cmd)
                snap[key] = got[1]
            self.samples.append((now, snap))
            self._stop.wait(self.every)

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per group between the last sample at or before `start` and the first at or
        after `end` (a process born meanwhile counts from zero, one gone counts to its last sample)."""
        before = next((s for t, s in reversed(self.samples) if t <= start), {})
        last: dict[tuple[str, int], float] = {}
        for t, snap in self.samples:
            if t < start:
                continue
            last.update(snap)
            if t >= end:
                break
        out: dict[str, float] = {}
        for key, cpu in last.items():
            used = cpu - before.get(key, 0.0)
            if used > 0:
                group = self._groups.get(key, "other")
                out[group] = out.get(group, 0.0) + used
        return out


def render(cpu: dict[str, float], submissions: int, seconds: float) -> str:
    """'hub 4.0 ms, grading service 5.2 ms, ... per submission; 1.8 of 2 cores busy'."""
    total = sum(cpu.values())
    order = sorted(cpu, key=lambda g: -cpu[g])
    per = ", ".join(f"{g} {cpu[g] / submissions * 1000:.1f} ms" for g in order if cpu[g] >= 0.005)
    cores = os.cpu_count() or 1
    busy = total / seconds if seconds > 0 else 0.0
    return (f"CPU per acknowledged submission during the rush: {per}; total {total / submissions * 1000:.1f} ms "
            f"({busy:.2f} of {cores} cores busy over {seconds:.1f} s)")
