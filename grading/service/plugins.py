"""Extension points of the grading service: extra handlers and hooks after collect and submit.

Other parts of coursehub, and other packages, plug into the service without editing it. A plugin is
a `setup(context: PluginContext) -> None` function, found by name: an entry point in the
`coursehub.grading_plugins` group (a package's `pyproject.toml`:
`[project.entry-points."coursehub.grading_plugins"] myplugin = "mypkg.plugin"`, a module with
`setup`, or `"mypkg.plugin:setup"`), or a module path. The service sets up the plugins named in the
settings (`grading.plugins`) and in `$COURSEHUB_GRADING_PLUGINS` (comma-separated), once each:
installing a package never adds routes to the service by itself (as JupyterHub selects an
authenticator by its entry-point name). coursehub's own are `dashboard`, `autograde-queue` and
`instant-feedback`.

`setup` receives the service's context: `context.settings` (the platform settings the service
runs with), `context.engine` (the grading database), `context.queue` (the autograde job queue on
that database), `context.course_dir(course_id)` and the registry `context.plugins`; a plugin
never re-reads the settings from the environment. The context also offers the registry's own
methods, so a `setup(plugins)` written for the registry alone keeps working. With them a plugin can

- `context.add_handlers([(r"dashboard/?", DashboardHandler), ...])`: routes relative to the service
  prefix; subclass `coursehub.grading.service.handlers.BaseHandler` for hub authentication and
  `self.caller` (set `token_only = False` for browser pages, which then use the hub's OAuth);
- `context.after_collect(fn)`: `fn(event: CollectedEvent, core: ExchangeCore)` runs in a worker
  thread after an instructor's collect downloaded submissions (once per download; the plugin
  downloads at most 100 per request, so a large collect gives several events; `event.submissions` are dicts with id,
  student_id, timestamp, late, sha256, blob_path; `core.submission_files(sub)` returns a
  submission's files, checksum verified). Exceptions are logged, never shown to the instructor.
- `context.after_submit(fn)`: `fn(info: dict, core: ExchangeCore) -> dict | None` runs in a worker
  thread after a new (not a retried) submission is stored durably, before the student's answer is
  sent; `info` is what `core.submit` returned (with blob_path). What it returns is added to the
  answer (instant feedback says `{"instant_feedback": "pending"}`); it must return quickly
  (queue work, never do it). Exceptions are logged and never fail the submission.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine

from coursehub.platform.settings import Settings

from .coursedirs import course_dir

#: The entry-point group grading plugins are registered in.
ENTRY_POINT_GROUP = "coursehub.grading_plugins"

log = logging.getLogger("coursehub.grading.service")


class Plugins:
    def __init__(self) -> None:
        self.handlers: list[tuple] = []
        self.collect_hooks: list[Callable[[Any, Any], None]] = []
        self.submit_hooks: list[Callable[[dict, Any], dict | None]] = []

    def add_handlers(self, handlers: Iterable[tuple]) -> None:
        self.handlers.extend(handlers)

    def after_collect(self, fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        self.collect_hooks.append(fn)
        return fn

    def after_submit(self, fn: Callable[[dict, Any], dict | None]) -> Callable[[dict, Any], dict | None]:
        self.submit_hooks.append(fn)
        return fn

    def run_after_submit(self, info: dict, core: Any) -> dict:
        extra: dict = {}
        for fn in self.submit_hooks:
            try:
                extra.update(fn(dict(info), core) or {})
            except Exception:  # noqa: BLE001 - the submission is stored: a broken hook must not fail it
                log.exception("after-submit hook %s failed for submission %s", getattr(fn, "__name__", fn),
                              info.get("id"))
        return extra

    def run_after_collect(self, event: Any, core: Any) -> None:
        for fn in self.collect_hooks:
            try:
                fn(event, core)
            except Exception:  # noqa: BLE001 - one broken hook must not break collect
                log.exception("after-collect hook %s failed for %s/%s", getattr(fn, "__name__", fn),
                              event.course_id, event.assignment_id)


@dataclass(eq=False)
class PluginContext:
    """What the service gives each plugin's `setup`: its settings, database and registry."""

    settings: Settings
    engine: Engine | None = None
    plugins: Plugins = field(default_factory=Plugins)

    def __post_init__(self) -> None:
        if self.engine is None:
            from ..db import make_engine

            self.engine = make_engine(self.settings.grading_db_url())

    @cached_property
    def queue(self) -> Any:
        """The autograde JobQueue on the grading database (its own engine: the queue's SQLite
        transactions take the write lock up front)."""
        from coursehub.grading.queue.api import JobQueue

        return JobQueue(self.settings.grading_db_url(), max_attempts=self.settings.grading.max_attempts)

    def course_dir(self, course_id: str) -> Path:
        """The course's nbgrader directory (collected submissions, gradebook)."""
        return course_dir(self.settings, course_id)

    # the registry's methods, so `setup(plugins)` plugins work unchanged
    def add_handlers(self, handlers: Iterable[tuple]) -> None:
        self.plugins.add_handlers(handlers)

    def after_collect(self, fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        return self.plugins.after_collect(fn)

    def after_submit(self, fn: Callable[[dict, Any], dict | None]) -> Callable[[dict, Any], dict | None]:
        return self.plugins.after_submit(fn)


def find_setup(name: str) -> Callable[[PluginContext], None]:
    """The setup function a plugin name stands for: an entry point of the group, else a module."""
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if found:
        target: Any = found[0].load()
        where = f"entry point {name!r} ({found[0].value})"
    else:
        try:
            target = importlib.import_module(name)
        except ImportError as e:
            known = sorted(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
            raise RuntimeError(f"grading plugin {name!r} is neither an installed {ENTRY_POINT_GROUP} entry point "
                               f"(installed: {', '.join(known) or 'none'}) nor an importable module: {e}") from e
        where = f"module {name!r}"
    setup = getattr(target, "setup", None) if isinstance(target, ModuleType) else target
    if not callable(setup):
        raise RuntimeError(f"grading plugin {where} has no setup(context) function")
    return setup


def load_plugins(names: Iterable[str] = (), context: PluginContext | None = None) -> Plugins:
    """Set up each named plugin (entry-point name or module) once, with the service's context;
    without one, a context from the platform settings. Returns the registry."""
    if context is None:
        from coursehub.platform.settings import load_settings

        context = PluginContext(load_settings())
    env = [n.strip() for n in os.environ.get("COURSEHUB_GRADING_PLUGINS", "").split(",") if n.strip()]
    done: set[Any] = set()
    for name in [*names, *env]:
        setup = find_setup(name)
        key = (getattr(setup, "__module__", None), getattr(setup, "__qualname__", id(setup)))
        if key in done:  # the same plugin named twice (e.g. by entry point and by module)
            continue
        done.add(key)
        setup(context)
        log.info("grading plugin loaded: %s", name)
    return context.plugins
