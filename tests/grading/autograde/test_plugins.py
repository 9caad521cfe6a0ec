"""Grading-service plugins are found by entry point (group `coursehub.grading_plugins`) or module and
set up with the service's context: its settings, database, queue and registry."""

from __future__ import annotations

import sys
from importlib import metadata
from types import SimpleNamespace

import pytest

from coursehub.grading.queue import JobQueue
from coursehub.grading.service import plugins as plugins_mod
from coursehub.grading.service.plugins import ENTRY_POINT_GROUP, PluginContext, load_plugins
from coursehub.platform.settings import load_settings

PLUGIN = '''
SEEN = []

def setup(context):
    SEEN.append(context)
    context.add_handlers([(r"probe/?", object)])
'''


@pytest.fixture
def context(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSEHUB_GRADING_PLUGINS", raising=False)
    (tmp_path / "courses").mkdir()
    settings = load_settings(overrides_file(tmp_path))
    ctx = PluginContext(settings)
    yield ctx
    ctx.engine.dispose()


def overrides_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {tmp_path / 'courses'}\n")
    return path


def test_an_entry_point_plugin_is_set_up_with_the_services_context(context, tmp_path, monkeypatch):
    (tmp_path / "probe_plugin_pkg.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_plugin_pkg", raising=False)
    installed = [metadata.EntryPoint("probe", "probe_plugin_pkg:setup", ENTRY_POINT_GROUP)]
    asked = []

    def entry_points(**kw):
        asked.append(kw)
        return installed if kw.get("group") == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(plugins_mod.metadata, "entry_points", entry_points)
    registry = load_plugins(["probe"], context)
    import probe_plugin_pkg

    [seen] = probe_plugin_pkg.SEEN
    assert seen is context and registry is context.plugins
    assert seen.settings.state_dir == tmp_path / "state"  # the service's settings, not re-read
    assert seen.engine is context.engine
    assert isinstance(seen.queue, JobQueue) and str(seen.queue.engine.url) == context.settings.grading_db_url()
    assert seen.course_dir("abc101") == context.settings.state_dir / "course-dirs" / "abc101"
    assert registry.handlers == [(r"probe/?", object)]
    assert {"group": ENTRY_POINT_GROUP} in asked


def test_the_built_in_plugins_by_entry_point_name_once_each(context):
    """coursehub's own entry points (pyproject.toml) resolve; a plugin named by entry point and by
    module is set up once; the queue plugin enqueues on the context's queue."""
    context.queue.create_tables()
    registry = load_plugins(["autograde-queue", "coursehub.grading.queue.plugin", "dashboard"], context)
    assert len(registry.collect_hooks) == 1
    assert any("dashboard" in str(h[0]) for h in registry.handlers)
    sub = {"id": 7, "student_id": "alice", "sha256": "ab" * 32}
    registry.run_after_collect(SimpleNamespace(course_id="abc101", assignment_id="ps1", submissions=[sub]), None)
    lease = context.queue.lease("t", 30)
    assert (lease.course_id, lease.student) == ("abc101", "alice")
    assert lease.payload == {"course_dir": str(context.course_dir("abc101")), "submission_id": 7,
                             "sha256": "ab" * 32}
    context.queue.engine.dispose()


def test_a_setup_written_for_the_registry_still_works(context, monkeypatch):
    monkeypatch.setenv("COURSEHUB_GRADING_PLUGINS", "support.hookplugin")
    assert len(load_plugins([], context).collect_hooks) == 1


def test_an_unknown_plugin_says_what_is_installed(context):
    with pytest.raises(RuntimeError, match="neither an installed coursehub.grading_plugins entry point") as e:
        load_plugins(["no-such-plugin"], context)
    assert "autograde-queue" in str(e.value) and "dashboard" in str(e.value)

