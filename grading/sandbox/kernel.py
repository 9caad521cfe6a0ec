"""A jupyter_client kernel manager for a kernel that lives in a sandbox slot.

nbclient (and so nbgrader's Execute preprocessor) only needs a manager that says a kernel exists,
makes clients for it, tells whether it is alive and can interrupt it. The kernel process itself is
forked by the slot's zygote; sockets are unix sockets (ipc transport) in the slot's run folder,
which is how the client outside reaches a kernel that has no network.
"""

from __future__ import annotations

import asyncio
from queue import Empty

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type, default

from .slot import KernelInfo, SandboxSlot


class SandboxKernelClient(AsyncKernelClient):
    """jupyter_client's client with a quicker readiness check and no heartbeat channel.

    The stock `wait_for_ready` ends by draining IOPub until 0.2 s pass without a message, which costs
    0.2 s per notebook. Here: the kernel_info reply proves the shell channel, the status message
    that ipykernel publishes for every request proves IOPub, and the drain is short.

    No heartbeat: whether the kernel lives is the slot's answer (through the manager, which is this
    client's parent), so the heartbeat thread would only ping. And jupyter_client's heartbeat thread
    has a race: stopped before it has set itself running, it sets itself running anyway and, never
    answered, opens a new socket after another until the context runs out of them ("Too many open
    files") before `stop_channels` returns. A grading client is stopped that early whenever a kernel
    fails at once, which is when it matters most that nothing else goes wrong.
    """

    def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = False,
                       control: bool = True) -> None:
        super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        # LINGER 0: a kernel that died with messages still queued to it must not make closing the
        # client (or garbage-collecting it) block forever.
        self._created_context = True
        ctx = zmq.asyncio.Context()
        ctx.setsockopt(zmq.LINGER, 0)
        return ctx

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or 60)
        while True:
            if loop.time() > deadline:
                raise RuntimeError("the sandboxed kernel did not become ready in time")
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=0.5)
            except Empty:
                continue
            if msg["msg_type"] != "kernel_info_reply":
                continue
            try:
                await self.iopub_channel.get_msg(timeout=0.5)
            except Empty:
                continue  # IOPub not connected yet: ask again
            self._handle_kernel_info_reply(msg)
            break
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.01)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready


class SandboxKernelManager(AsyncKernelManager):
    client_factory = Type(SandboxKernelClient, klass=AsyncKernelClient)

    def __init__(self, slot: SandboxSlot, kernel: KernelInfo | None = None, **kw) -> None:
        super().__init__(kernel_name="python3", **kw)
        self.slot = slot
        info = kernel or slot.kernel
        if info is None:
            raise RuntimeError("the sandbox slot has no kernel: call slot.spawn() first")
        self.info = info
        self.pid = info.pid
        self.load_connection_info(info.connection)

    @property
    def has_kernel(self) -> bool:
        return True

    @property
    def ipykernel(self) -> bool:
        return True

    async def _async_is_alive(self) -> bool:
        return self.slot.kernel_alive(self.pid, self.info.generation)

    is_alive = _async_is_alive

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt by message (no signals cross the sandbox): ipykernel raises KeyboardInterrupt."""
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        self._close_control_socket()
        self.slot.kill(self.info)

    shutdown_kernel = _async_shutdown_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        self._close_control_socket()

    cleanup_resources = _async_cleanup_resources
