"""Environment parity: a submission carries the environment and kernel it was made in, and the
autograder grades it only if they are the course's (issue 15).

The student's exchange client sends the lock hash of the environment its server runs in
(`platform.environments.running_environment`) and the kernel names of the submitted notebooks as two
headers; the service stores them with the submission and writes them into each collected folder
(`RECORD_FILE`, beside nbgrader's `timestamp.txt`); the autograde run compares them with the
course's current lock and source kernels. A mismatch is a status of its own, never a grade. The
rules live here, in one small module without dependencies, for the client, the service and the
grader alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

#: Request headers the exchange client sends with a submission.
HEADER_ENVIRONMENT = "X-Coursehub-Environment"
HEADER_KERNEL = "X-Coursehub-Kernel"
#: The record the service writes into each collected submission, and the grader into autograded/.
#: The service drops a file of this name from students' uploads: only the client's report counts.
RECORD_FILE = "coursehub-environment.json"
#: The autograde status of a submission made in another environment or kernel: not graded.
MISMATCH = "environment-mismatch"
#: The autograde job payload key (true) with which the instructor accepts a mismatch: graded anyway.
ACCEPT_MISMATCH = "accept_environment_mismatch"

_ENV = re.compile(r"^(default|[0-9a-f]{64})$")
_KERNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def kernel_names(files: dict[str, bytes]) -> list[str]:
    """The sorted kernelspec names of the notebooks among `files` (unreadable notebooks are skipped:
    the grader reports those itself)."""
    names = set()
    for rel, data in files.items():
        if not rel.endswith(".ipynb"):
            continue
        try:
            name = json.loads(data)["metadata"]["kernelspec"]["name"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(name, str) and _KERNEL.match(name):
            names.add(name)
    return sorted(names)


def submission_headers(files: dict[str, bytes], environment: str) -> dict[str, str]:
    """The parity headers for a submission of `files` made in `environment`."""
    headers = {HEADER_ENVIRONMENT: environment}
    kernels = kernel_names(files)
    if kernels:
        headers[HEADER_KERNEL] = ",".join(kernels)
    return headers


def clean_environment(value: str | None) -> str | None:
    """A received environment id, or None when absent or malformed (graded as an unrecorded one)."""
    value = (value or "").strip().lower()
    return value if _ENV.match(value) else None


def clean_kernel(value: str | None) -> str | None:
    """Received kernel names (comma-separated), or None when absent or malformed."""
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    if not names or len(names) > 8 or not all(_KERNEL.match(n) for n in names):
        return None
    return ",".join(sorted(set(names)))


def short(environment: str | None) -> str:
    """How people see an environment id: the 12 hex of env folder names and image tags."""
    if not environment:
        return ""
    return environment if environment == "default" else environment[:12]


@dataclass(frozen=True)
class Recorded:
    """What a submission says about where it was made."""

    environment: str
    kernel: str | None = None

    def to_bytes(self) -> bytes:
        return (json.dumps({"environment": self.environment, "kernel": self.kernel}) + "\n").encode()


def read_record(folder: Path) -> Recorded | None:
    """The record in a collected submission folder; None when there is none or it is unreadable
    (older clients, nbgrader's own exchange): such submissions are graded as before."""
    try:
        data = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    environment = clean_environment(data.get("environment"))
    if environment is None:
        return None
    return Recorded(environment, clean_kernel(data.get("kernel")))


@dataclass(frozen=True)
class Parity:
    """The outcome of comparing a submission's record with the course.
    `outcome`: "match", "unrecorded" (graded, logged), "accepted" (a mismatch the instructor
    accepted: graded) or "mismatch" (not graded; `reason` says why, for the instructor)."""

    outcome: str
    expected: str
    recorded: Recorded | None = None
    reason: str = ""

    @property
    def graded(self) -> bool:
        return self.outcome != "mismatch"

    def graded_record(self) -> bytes:
        """What autograded/<student>/<assignment>/RECORD_FILE keeps: the environment the grade was
        made in, and what the submission had."""
        rec = self.recorded
        return (json.dumps({"graded_environment": self.expected, "environment": rec.environment if rec else None,
                            "kernel": rec.kernel if rec else None, "parity": self.outcome}) + "\n").encode()


def check(recorded: Recorded | None, expected: str, kernels: set[str] | frozenset[str] = frozenset(),
          *, accept: bool = False) -> Parity:
    """Compare a submission's record with the course's environment id (`expected`) and the kernel
    names of the assignment's source notebooks (`kernels`; empty: not checked)."""
    if recorded is None:
        return Parity("unrecorded", expected)
    problems = []
    if recorded.environment != expected:
        problems.append(f"it was made in environment {short(recorded.environment)}, the course's is "
                        f"{short(expected)}")
    made_with = set((recorded.kernel or "").split(",")) - {""}
    if kernels and made_with - kernels:
        problems.append(f"its notebooks ran the kernel {', '.join(sorted(made_with - kernels))}, the "
                        f"assignment's is {', '.join(sorted(kernels))}")
    if not problems:
        return Parity("match", expected, recorded)
    reason = "; ".join(problems)
    if accept:
        return Parity("accepted", expected, recorded, reason + " (accepted by the instructor)")
    return Parity("mismatch", expected, recorded,
                  reason + ": not graded, a grade from other packages could be wrong. Ask the student to "
                  "resubmit from the course's server, or grade it anyway (\"Grade anyway\" on the grades "
                  "dashboard, or `coursehub autograde --accept-environment-mismatch`)")


def graded_environment(autograded: Path) -> str | None:
    """The environment id a submission was graded in (from its autograded folder), or None."""
    try:
        data = json.loads((autograded / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("graded_environment") if isinstance(data, dict) else None
    return clean_environment(value if isinstance(value, str) else None)


def graded_environments(course_dir: Path) -> dict[tuple[str, str], str]:
    """(student, assignment) -> the environment id each autograded submission of an nbgrader course
    directory was graded in (for the dashboard); submissions graded without a record are absent."""
    out: dict[tuple[str, str], str] = {}
    root = Path(course_dir) / "autograded"
    if not root.is_dir():
        return out
    for record in root.glob(f"*/*/{RECORD_FILE}"):
        env = graded_environment(record.parent)
        if env is not None:
            out[(record.parent.parent.name, record.parent.name)] = env
    return out
