"""The grading service listens before it does anything slow. On the local platform JupyterHub 5
gives a managed service about ten one-second tries to answer, and importing nbgrader alone takes
seconds on a busy machine: the default plugins must not import it, and course.yaml's deadlines are
written into the gradebooks after the service listens. Its imports run without the cyclic collector
and are frozen (`coursehub.startup.collector_paused`), so a deadline's full collections skip them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import nbformat

from coursehub.grading.service.coursedirs import ensure_course_dirs, sync_all_deadlines
from coursehub.platform.courses import load_catalog
from coursehub.platform.settings import load_settings


def test_the_default_plugins_load_without_importing_nbgrader(tmp_path):
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(f"state_dir: {tmp_path / 'state'}\n")
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from coursehub.platform.settings import load_settings
        from coursehub.grading.db import make_engine
        from coursehub.grading.service.plugins import PluginContext, load_plugins
        settings = load_settings(Path({str(settings_file)!r}))
        engine = make_engine("sqlite://")
        plugins = load_plugins(settings.grading.plugins, PluginContext(settings, engine))
        assert plugins.handlers, "no plugin added a route"
        print(sorted(m for m in sys.modules if m == "nbgrader" or m.startswith("nbgrader.")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_deadlines_are_left_for_after_listening_then_written(tmp_path):
    from nbgrader.api import Gradebook

    courses = tmp_path / "courses" / "c1"
    (courses / "source" / "ps1").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), courses / "source" / "ps1" / "ps1.ipynb")
    (courses / "course.yaml").write_text(
        "id: c1\ntitle: C1\nassignments:\n  - id: ps1\n    title: PS1\n    due: 2030-01-01T10:00:00Z\n")
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {tmp_path / 'courses'}\n")
    settings = load_settings(settings_file)
    catalog = load_catalog(settings.courses_dir)
    (root,) = ensure_course_dirs(settings, catalog, sync_deadlines=False)
    assert not (root / "gradebook.db").exists()  # nothing of nbgrader before the service listens
    sync_all_deadlines(settings, catalog)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="c1") as gb:
        assert gb.find_assignment("ps1").duedate.year == 2030


FROZEN_IMPORTS = """
import gc, types
import coursehub.grading.db as db
frozen = gc.get_freeze_count()
seen = []

def check_schema(url, engine, settings_hint=""):
    seen.append((gc.isenabled(), gc.get_freeze_count() > frozen, 'coursehub.grading.service.app' in __import__('sys').modules))
    raise RuntimeError("stop here")

db.check_schema = check_schema
db.SchemaOutdated = KeyError  # the RuntimeError above is not caught as an outdated schema
from coursehub.grading.service.__main__ import _serve
settings = types.SimpleNamespace(grading_db_url=lambda: "sqlite:///" + {db!r}, source=None)
try:
    _serve(None, settings, None)
except RuntimeError:
    pass
print(*seen[0])
"""


def test_its_imports_are_frozen_and_the_collector_is_on_when_it_opens_the_database(tmp_path):
    out = subprocess.run([sys.executable, "-c", FROZEN_IMPORTS.format(db=str(tmp_path / "g.db"))], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]
