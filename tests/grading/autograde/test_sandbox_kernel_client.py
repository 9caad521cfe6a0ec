"""The grading kernel client: liveness from the sandbox slot, and no heartbeat thread whose
start-then-stop race (jupyter_client) spins up sockets until the context has none left."""

from __future__ import annotations

import threading
import time

import pytest

from coursehub.grading.sandbox.kernel import SandboxKernelClient, SandboxKernelManager
from coursehub.grading.sandbox.slot import KernelInfo


class FakeSlot:
    """What the manager asks of a slot: whether the kernel of a generation is alive, and to kill it."""

    def __init__(self) -> None:
        self.alive, self.killed = True, []

    def kernel_alive(self, pid: int, generation: int) -> bool:
        return self.alive

    def kill(self, info: KernelInfo) -> None:
        self.killed.append(info.pid)


def manager(tmp_path) -> SandboxKernelManager:
    """A manager for a kernel that never came up: nobody listens at its ipc sockets."""
    connection = {"transport": "ipc", "ip": str(tmp_path / "k"), "shell_port": 1, "iopub_port": 2,
                  "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": "k", "signature_scheme": "hmac-sha256"}
    return SandboxKernelManager(FakeSlot(), KernelInfo(pid=4242, connection=connection, started=0.0, generation=1))


def test_start_then_stop_at_once_leaves_no_thread_and_no_spinning(tmp_path):
    errors = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        for _ in range(30):
            kc = manager(tmp_path).client()
            assert isinstance(kc, SandboxKernelClient)
            started = time.monotonic()
            kc.start_channels()
            assert kc._hb_channel is None  # the heartbeat is never made, so never started
            kc.stop_channels()
            assert time.monotonic() - started < 5
            assert not kc.channels_running
    finally:
        threading.excepthook = old_hook
    assert errors == []


async def test_liveness_is_the_slots_answer(tmp_path):
    km = manager(tmp_path)
    kc = km.client()
    assert await kc.is_alive() is True
    km.slot.alive = False
    assert await kc.is_alive() is False
    await km.shutdown_kernel(now=True)
    assert km.slot.killed == [4242]


@pytest.mark.parametrize("hb", [True, False])
def test_a_caller_asking_for_the_heartbeat_still_gets_none(tmp_path, hb):
    kc = manager(tmp_path).client()
    kc.start_channels(hb=hb)
    try:
        assert kc._hb_channel is None and kc.shell_channel.is_alive() and kc.iopub_channel.is_alive()
    finally:
        kc.stop_channels()


def test_a_kernel_started_without_a_sandbox_gets_the_same_client(monkeypatch):
    """Inside a Kubernetes grader pod (the pod is the sandbox) nbclient starts an ordinary kernel:
    its client is this one too, with no heartbeat."""
    import nbformat
    from traitlets.config import Config

    from coursehub.grading.autograde import execute
    from coursehub.grading.sandbox.limits import KernelLimits

    clients = []
    real = SandboxKernelClient.start_channels

    def recording(self, *args, **kwargs):
        clients.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SandboxKernelClient, "start_channels", recording)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    outcome = execute.run_notebook(None, nb, {}, Config(), KernelLimits(cell_timeout_seconds=60))
    assert outcome.status == execute.GRADED, outcome
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert len(clients) == 1
    # stop_channels makes the heartbeat object when it asks whether it runs: it was never started
    assert clients[0]._hb_channel is None or clients[0]._hb_channel.ident is None
