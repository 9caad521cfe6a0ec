"""Resource limits for one sandboxed kernel, in plain numbers (bytes, seconds, counts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class KernelLimits:
    """What the sandbox enforces on the kernels grading one submission (the settings' `grading.sandbox`
    section, `SandboxLimits`, in plain numbers); not the exchange's upload limits (`archive.UploadLimits`)."""

    #: CPU seconds per kernel process (RLIMIT_CPU): a busy loop is killed after this.
    cpu_seconds: int = 120
    #: Wall seconds a single cell may run before it is interrupted (nbgrader's ExecutePreprocessor.timeout).
    cell_timeout_seconds: int = 30
    #: Wall seconds for a whole submission (all notebooks) before everything is killed.
    submission_timeout_seconds: int = 300
    #: Memory student code may allocate, bytes. For the whole submission (all its processes) by a
    #: cgroup where the host has one (see submission_memory_bytes); and per process always, as an
    #: address-space limit (RLIMIT_AS) of memory_bytes + address_space_headroom_bytes: an idle
    #: ipykernel already maps ~0.75 GiB of virtual memory (libraries, thread stacks) it never touches.
    memory_bytes: int = 1 << 30
    address_space_headroom_bytes: int = 1 << 30
    #: Processes and threads: of the whole submission (cgroup pids.max, where the host has cgroups)
    #: and of the slot's uid (RLIMIT_NPROC; each slot has a uid of its own on the host).
    processes: int = 64
    #: Memory the sandbox's own processes use before any student code runs (the zygote and idle
    #: kernels, ~60-100 MiB each): added to `memory_bytes` for the whole-submission cgroup limit.
    runtime_overhead_bytes: int = 384 << 20
    #: Largest file the kernel may write (RLIMIT_FSIZE), bytes.
    file_size_bytes: int = 64 << 20
    #: Size of the sandbox's /tmp (a tmpfs), bytes.
    tmp_bytes: int = 64 << 20
    #: Output a notebook may produce (streams, results, errors) before its kernel is stopped, bytes.
    output_bytes: int = 1_000_000
    #: Open files per process (RLIMIT_NOFILE).
    open_files: int = 256

    @classmethod
    def from_settings(cls, sandbox) -> KernelLimits:
        """From `coursehub.platform.settings.SandboxLimits`."""
        from coursehub.platform.courses import parse_quantity

        return cls(
            cpu_seconds=sandbox.cpu_seconds,
            cell_timeout_seconds=sandbox.cell_timeout_seconds,
            submission_timeout_seconds=sandbox.submission_timeout_seconds,
            memory_bytes=parse_quantity(sandbox.memory),
            processes=sandbox.processes,
            file_size_bytes=parse_quantity(sandbox.file_size),
            output_bytes=sandbox.output_bytes,
        )

    def rlimits(self) -> dict[str, int]:
        """The per-kernel rlimits the zygote applies (keys are zygote.LIMITS names)."""
        return {
            "cpu_seconds": self.cpu_seconds,
            "address_space": self.memory_bytes + self.address_space_headroom_bytes,
            "processes": self.processes,
            "file_size": self.file_size_bytes,
            "open_files": self.open_files,
        }

    def submission_memory_bytes(self) -> int:
        """The memory limit of the submission's cgroup: student memory + the runtime's own."""
        return self.memory_bytes + self.runtime_overhead_bytes

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
