"""Inside a Kubernetes grader pod: execute the sanitized notebooks in /input, print the results.

    python -m coursehub.grading.autograde.podrun /input

The pod is the sandbox (non-root, read-only root filesystem, no service-account token, no egress,
resource limits, a deadline). This program gets notebooks that were already sanitized outside
(locked and test cells restored), runs each in a fresh kernel with nbgrader's Execute step and the
output cap, and writes one JSON line per notebook to stdout. Scores are computed outside, by the
executor, from those notebooks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
from traitlets.config import Config

from coursehub.grading.sandbox.limits import Limits

from . import execute

WORK = Path(os.environ.get("COURSEHUB_WORKSPACE", "/home/student/work"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    src = Path(argv[0] if argv else "/input")
    spec = json.loads((src / "job.json").read_text())
    limits = Limits(**spec.get("limits", {}))
    config = Config(spec.get("config", {}))
    WORK.mkdir(parents=True, exist_ok=True)
    for rel in spec.get("files", []):
        dest = WORK / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "files" / rel.replace("/", "__"), dest)
    os.chdir(WORK)
    for name in spec["notebooks"]:
        nb = nbformat.read(src / f"{name}.ipynb", as_version=4)
        res = {"metadata": {"path": str(WORK)}, "nbgrader": {"notebook": name}}
        outcome = execute.run_notebook(None, nb, res, config, limits)
        line = {"name": name, "status": outcome.status, "reason": outcome.reason, "notebook": nbformat.writes(nb)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
