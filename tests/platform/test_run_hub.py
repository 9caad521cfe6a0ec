"""`python -m coursehub.platform.run_hub`: JupyterHub's command without the IRI parser at import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None, reason="rfc3987-syntax not installed")
def test_the_hub_imports_jupyterhub_without_building_the_iri_parser():
    plain = _python("import sys, jupyterhub.app\nprint('lark' in sys.modules)")
    assert plain.stdout.strip() == "True", plain.stderr  # what `jupyterhub` alone pays at start
    ours = _python("import sys, coursehub.platform.run_hub, jupyterhub.app\nprint('lark' in sys.modules)")
    assert ours.stdout.strip() == "False", ours.stderr


@pytest.mark.parametrize("argv", [["--version"], ["jupyterhub", "--version"]])
def test_runs_jupyterhubs_command_with_or_without_the_charts_program_name(argv):
    import jupyterhub

    r = subprocess.run([sys.executable, "-m", "coursehub.platform.run_hub", *argv], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == jupyterhub.__version__


def test_an_unknown_option_is_jupyterhubs_error():
    r = subprocess.run([sys.executable, "-m", "coursehub.platform.run_hub", "--no-such-option"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "no-such-option" in r.stderr + r.stdout


def test_the_hub_runs_with_the_collector_on_and_its_imports_frozen():
    """JupyterHub's imports ran with the cyclic collector paused and were frozen, so a running hub's
    full collections skip them; the hub itself runs with the collector on (it must free its cycles)."""
    out = _python("import gc, sys\n"
                  "import jupyterhub.app\n"
                  "frozen = gc.get_freeze_count()\n"
                  "jupyterhub.app.main = lambda argv: print(gc.isenabled(), gc.get_freeze_count() > frozen, argv)\n"
                  "from coursehub.platform import run_hub\n"
                  "run_hub.main(['jupyterhub', '--debug'])\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "['--debug']"]
