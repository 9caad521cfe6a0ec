"""Subprocesses that run this virtualenv's tools by name (nbgrader, jupyter, coursehub) find them
first on PATH, even when the suite or a benchmark was started without activating the venv."""

from __future__ import annotations

import os
import sys


def venv_path() -> str:
    """PATH with the running interpreter's bin folder in front."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def venv_env() -> dict[str, str]:
    """This process's environment with `venv_path()` as PATH."""
    return {**os.environ, "PATH": venv_path()}
