"""Execute a sanitized notebook in a sandboxed kernel, with nbgrader's Execute preprocessor.

`SandboxExecute` is nbgrader's `Execute` (so the same timeouts, error handling and outputs) with
three additions that make it safe to run on hostile code:
- the kernel comes from a sandbox slot (pre-started, fresh per notebook, never shared);
- the notebook's total output is capped while it is being received, counting every message the
  kernel sends that can end up in the notebook (streams, results, errors, display and
  update_display data times the outputs it rewrites, comm/widget messages, reply payloads), so a
  flood of output cannot fill the grader's memory or the saved notebook;
- if the kernel dies, is killed or runs out of time, every code cell that did not finish gets an
  error output, so its test cannot pass: an early exit is "incomplete", never full marks;
- a failure that is not the student's (the kernel did not start, IOPub output did not arrive after
  the reply, the sandbox failed before any student code ran) is reported as `RunOutcome.infra`:
  the grader retries it and never applies it as a score.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import nbformat
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets.config import Config

from coursehub.grading.sandbox.kernel import SandboxKernelClient, SandboxKernelManager
from coursehub.grading.sandbox.limits import KernelLimits

#: Status of one notebook run. "graded" is the only one that means the notebook ran to its end.
GRADED, INCOMPLETE, TIMEOUT, OUTPUT_LIMIT = "graded", "incomplete", "timeout", "output_limit"


class OutputLimitExceeded(Exception):
    pass


@dataclass
class RunOutcome:
    status: str
    reason: str = ""
    #: set when the run failed for a reason that is not the student's: retry, never score
    infra: str = ""


#: nbclient's message when the execute reply came but the cell's IOPub output did not follow
IOPUB_TIMEOUT = "Timeout waiting for IOPub output"


def message_bytes(msg: dict) -> int:
    """Size of what a kernel message can add to the notebook: its content and binary buffers."""
    size = len(json.dumps(msg.get("content", {}), default=str))
    for b in msg.get("buffers") or []:
        size += len(b) if isinstance(b, (bytes, bytearray)) else memoryview(b).nbytes
    return size


class SandboxExecute(Execute):
    """nbgrader's Execute, bounded in output and aware of how far execution got."""

    def __init__(self, output_bytes: int, **kw) -> None:
        super().__init__(**kw)
        self.output_bytes = output_bytes
        self.output_seen = 0
        self.last_started = -1
        self.last_finished = -1
        self.code_started = False
        self.cell_timed_out = False
        self.over_limit = False

    def preprocess_cell(self, cell, resources, index):
        self.last_started = index
        if cell.cell_type == "code" and cell.source.strip():
            self.code_started = True
        result = super().preprocess_cell(cell, resources, index)
        self.last_finished = index
        return result

    async def _async_handle_timeout(self, timeout, cell=None):
        self.cell_timed_out = True  # what follows (even a lost IOPub reply) is the student's doing
        return await super()._async_handle_timeout(timeout, cell)

    def _stop_kernel(self) -> None:
        if isinstance(self.km, SandboxKernelManager):
            self.km.slot.kill(self.km.info)
        else:  # a kernel of our own (Kubernetes pod): kill its process
            proc = getattr(getattr(self.km, "provisioner", None), "process", None)
            if proc is not None:
                proc.kill()

    def _charge(self, size: int) -> None:
        self.output_seen += size
        if self.output_seen > self.output_bytes:
            if not self.over_limit:
                self.over_limit = True
                self._stop_kernel()  # stop the flood at its source
            raise OutputLimitExceeded(f"the notebook printed more than {self.output_bytes} bytes")

    def _display_copies(self, display_id: str | None) -> int:
        """How many outputs already carry `display_id` (an update rewrites every one of them)."""
        if not display_id:
            return 0
        return sum(len(idx) for idx in self._display_id_map.get(display_id, {}).values())

    def process_message(self, msg, cell, cell_index):
        """Every IOPub message of the cell passes here before nbclient stores anything of it."""
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        if msg_type not in ("status", "execute_input"):
            content = msg.get("content") or {}
            transient = content.get("transient") if isinstance(content, dict) else None
            display_id = transient.get("display_id") if isinstance(transient, dict) else None
            copies = 1
            if msg_type == "update_display_data":
                copies = max(1, self._display_copies(display_id))
            elif msg_type in ("display_data", "execute_result"):
                copies = 1 + self._display_copies(display_id)
            self._charge(message_bytes(msg) * copies)
        return super().process_message(msg, cell, cell_index)

    def on_cell_executed(self, **kwargs):
        """The execute reply can add its error (and payloads) to the cell: count it too."""
        reply = kwargs.get("execute_reply") or {}
        self._charge(message_bytes({"content": (reply.get("content") or {})}))
        return super().on_cell_executed(**kwargs)


def mark_unfinished(nb: NotebookNode, first: int, ename: str, evalue: str) -> None:
    """Give every code cell from `first` on that has no complete run an error output."""
    for cell in nb.cells[first:]:
        if cell.cell_type != "code":
            continue
        cell.outputs.append(nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))


def kernel_args(config: Config) -> list[str]:
    return ["--HistoryManager.hist_file=:memory:", *list(config.get("Execute", {}).get("extra_arguments", []))]


def run_notebook(km: SandboxKernelManager | None, nb: NotebookNode, resources: dict, config: Config,
                 limits: KernelLimits, deadline_timer: threading.Event | None = None) -> RunOutcome:
    """Run `nb` in place. `km`: a sandboxed kernel (local executor), or None to start an ordinary
    kernel here (inside a Kubernetes grader pod, which is the sandbox). Never raises for anything
    the student did."""
    c = Config(config)
    if "timeout" not in c.get("Execute", {}):
        c.Execute.timeout = limits.cell_timeout_seconds
    if "iopub_timeout" not in c.get("Execute", {}):
        # nbclient waits this long after a cell's reply for the rest of its output. nbgrader's
        # 4 s is easily exceeded on a loaded machine; the wait only costs time when that happens.
        c.Execute.iopub_timeout = max(4, limits.cell_timeout_seconds)
    if km is None:
        c.Execute.extra_arguments = kernel_args(config)
        # the same client as in a sandbox slot: its quicker readiness check, and no heartbeat thread
        c.AsyncKernelManager.client_factory = SandboxKernelClient
    ex = SandboxExecute(output_bytes=limits.output_bytes, config=c)
    try:
        ex.preprocess(nb, resources, km=km)
        slow = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                and any(o.get("ename") == "CellTimeoutError" for o in cell.outputs)]
        if slow:
            return RunOutcome(TIMEOUT, f"cell(s) {', '.join(map(str, slow))} ran longer than {c.Execute.timeout}s "
                                       "and were interrupted")
        return RunOutcome(GRADED)
    except Exception as e:  # noqa: BLE001 - DeadKernelError, RuntimeError from nbclient, iopub timeouts...
        if ex.over_limit:
            reason = f"the notebook printed more than {limits.output_bytes} bytes"
            mark_unfinished(nb, max(ex.last_started, 0), "OutputLimitExceeded", reason)
            return RunOutcome(OUTPUT_LIMIT, reason)
        timed_out = deadline_timer is not None and deadline_timer.is_set()
        infra = _infrastructure_failure(ex, e, timed_out)
        if infra:
            return RunOutcome(INCOMPLETE, infra, infra=infra)
        status = TIMEOUT if timed_out or type(e).__name__ == "CellTimeoutError" else INCOMPLETE
        if timed_out:
            reason = "the submission ran out of time"
        elif status == TIMEOUT:
            reason = f"a cell did not stop within {c.Execute.timeout}s, even when interrupted"
        elif isinstance(e, DeadKernelError):
            reason = _death_reason(ex.km)
        else:
            reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        mark_unfinished(nb, max(ex.last_finished + 1, 0), "KernelStopped", reason)
        return RunOutcome(status, reason)
    finally:
        kc = getattr(ex, "kc", None)
        if kc is not None:
            try:
                kc.stop_channels()
                if getattr(kc, "_created_context", False):
                    kc.context.destroy(linger=0)
            except Exception:  # noqa: BLE001
                pass
        if isinstance(km, SandboxKernelManager):
            km._close_control_socket()
            if getattr(km, "_created_context", False):
                km.context.destroy(linger=0)


def _infrastructure_failure(ex: SandboxExecute, e: Exception, timed_out: bool) -> str:
    """Why this failure is not the student's, or "" if it may be."""
    detail = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    if timed_out:
        return ""
    if not ex.code_started:
        return f"the kernel did not start or the sandbox failed before any student code ran ({detail})"
    if IOPUB_TIMEOUT in str(e) and not ex.cell_timed_out:
        return f"the kernel's output did not arrive in time after its reply ({detail})"
    return ""


def _death_reason(km) -> str:
    import os
    import signal

    if not isinstance(km, SandboxKernelManager):
        return "the kernel died"
    status = km.slot.exit_status(km.pid)
    if status is None:
        return "the kernel stopped responding"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "the kernel used up its CPU time"
        if sig == signal.SIGKILL:
            return "the kernel was killed (out of memory or out of time)"
        return f"the kernel died from signal {signal.Signals(sig).name}"
    return f"the kernel exited early (status {os.WEXITSTATUS(status)})"
