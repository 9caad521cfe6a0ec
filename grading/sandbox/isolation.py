"""Say, at start, what the local sandbox limits per submission and what only per process.

Operators must know whether memory and process counts are capped for a submission as a whole
(a cgroup) or only per process (rlimits: a submission that forks can use a multiple). This is
printed by `coursehub autograde` and logged by every local executor when it starts.
"""

from __future__ import annotations

import logging

from . import cgroups
from .bwrap import privileged
from .limits import KernelLimits

log = logging.getLogger(__name__)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def describe(limits: KernelLimits) -> tuple[str, bool]:
    """(the text, whether memory and processes are limited per submission)."""
    backend = cgroups.detect()
    per_process = (f"CPU {limits.cpu_seconds} s, address space {_mib(limits.memory_bytes + limits.address_space_headroom_bytes)}, "
                   f"file size {_mib(limits.file_size_bytes)}, open files {limits.open_files}")
    uid = ("processes+threads per slot uid (unique on this host) "
           f"{limits.processes} (RLIMIT_NPROC)" if privileged() else
           "processes+threads per worker user (RLIMIT_NPROC; run each worker as its own user)")
    per_sub = (f"wall time {limits.submission_timeout_seconds} s, /tmp {_mib(limits.tmp_bytes)}, "
               f"output {limits.output_bytes} bytes per notebook, own pid namespace and workspace")
    if backend is not None:
        text = (f"sandbox limits PER SUBMISSION via {backend.describe()}: memory "
                f"{_mib(limits.submission_memory_bytes())} (student {_mib(limits.memory_bytes)} + runtime "
                f"{_mib(limits.runtime_overhead_bytes)}), processes+threads {limits.processes}; {per_sub}. "
                f"PER PROCESS: {per_process}. {uid}.")
        return text, True
    text = ("WARNING: no usable cgroup memory/pids controller (set COURSEHUB_SANDBOX_CGROUP to a delegated "
            "cgroup v2 subtree, or run as root with cgroup v1 memory and pids mounted): memory and processes "
            f"are limited PER PROCESS ONLY; a submission that forks can use a multiple of {_mib(limits.memory_bytes)}. "
            f"PER SUBMISSION: {per_sub}. PER PROCESS: {per_process}. {uid}.")
    return text, False


_said = False


def announce(limits: KernelLimits) -> str:
    """Log the description once per process (a warning when there are no cgroups)."""
    global _said
    text, strong = describe(limits)
    if not _said:
        _said = True
        (log.info if strong else log.warning)("%s", text)
    return text
