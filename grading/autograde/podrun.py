"""Inside a Kubernetes grader pod: fetch the sanitized notebooks, execute them, return the results.

    python -m coursehub.grading.autograde.podrun            # in a Job (COURSEHUB_JOB_URL/TOKEN set)
    python -m coursehub.grading.autograde.podrun /input     # a folder with job.json (local trials)

The pod is the sandbox (non-root, read-only root filesystem, no service-account token, egress only
to the worker's job port, resource limits). The input comes from the worker with the per-job token,
which is removed from the environment and the process made non-dumpable before any student code
runs, so a kernel cannot read it back. Each notebook runs in a fresh kernel with nbgrader's Execute
step and the output cap; each result goes back as soon as it is ready (a later kill loses only what
had not run). The submission's wall time counts from here, not from when the Job was created.
Scores are computed outside, by the executor.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
from traitlets.config import Config

from coursehub.grading.sandbox.limits import KernelLimits

from . import execute

WORK = Path(os.environ.get("COURSEHUB_WORKSPACE", "/home/student/work"))


class Channel:
    """Talks to the worker's job port (or, with a folder, prints JSON lines to stdout)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.read()
            except OSError:
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)
        return b""

    def fetch(self) -> dict:
        return json.loads(self._call("GET", "/input"))

    def send(self, line: dict) -> None:
        self._call("PUT", f"/notebooks/{line['name']}", json.dumps(line).encode())

    def done(self) -> None:
        self._call("POST", "/done", b"")


def _not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): other processes of this uid (the kernels) cannot read our memory
    or /proc/<pid>/environ, where the job token was."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _from_folder(src: Path) -> dict:
    spec = json.loads((src / "job.json").read_text())
    spec["notebooks"] = {n: (src / f"{n}.ipynb").read_text() for n in spec["notebooks"]}
    spec["files"] = {rel: base64.b64encode((src / "files" / rel.replace("/", "__")).read_bytes()).decode()
                     for rel in spec.get("files", [])}
    return spec


def run(spec: dict, send, finish=lambda: None, limits_override: KernelLimits | None = None) -> None:
    limits = limits_override or KernelLimits(**spec.get("limits", {}))
    config = Config(spec.get("config", {}))
    WORK.mkdir(parents=True, exist_ok=True)
    for rel, b64 in spec.get("files", {}).items():
        dest = WORK / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode(b64))
    for name, text in spec["notebooks"].items():
        (WORK / f".{name}.input.ipynb").write_text(text)
    os.chdir(WORK)
    sent: set[str] = set()
    expired = threading.Event()

    def out_of_time() -> None:  # the submission's wall time: report what is left, then stop
        expired.set()
        for name in spec["notebooks"]:
            if name not in sent:
                send({"name": name, "status": "timeout", "reason": "the submission ran out of time",
                      "notebook": ""})
        finish()
        os._exit(0)

    timer = threading.Timer(limits.submission_timeout_seconds, out_of_time)
    timer.daemon = True
    timer.start()
    for name, text in spec["notebooks"].items():
        nb = nbformat.reads(text, as_version=4)
        res = {"metadata": {"path": str(WORK)}, "nbgrader": {"notebook": name}}
        outcome = execute.run_notebook(None, nb, res, config, limits, deadline_timer=expired)
        line = {"name": name, "status": outcome.status, "reason": outcome.reason, "infra": outcome.infra,
                "notebook": nbformat.writes(nb)}
        send(line)
        sent.add(name)
    timer.cancel()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url, token = os.environ.pop("COURSEHUB_JOB_URL", ""), os.environ.pop("COURSEHUB_JOB_TOKEN", "")
    if url:
        _not_dumpable()
        channel = Channel(url, token)
        spec = channel.fetch()
        run(spec, channel.send, channel.done)
        channel.done()
        return 0

    def emit(line: dict) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    run(_from_folder(Path(argv[0] if argv else "/input")), emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
