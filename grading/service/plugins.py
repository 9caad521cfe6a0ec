"""Extension points of the grading service: extra handlers and hooks after collect.

Other parts of coursehub plug into the service without editing it. A plugin is a module with
`setup(plugins: Plugins) -> None`; the service imports the modules named in the settings
(`grading.plugins`) or in `$COURSEHUB_GRADING_PLUGINS` (comma-separated), or they are passed
to `make_app(..., plugins=...)` directly. In `setup` a plugin can

- `plugins.add_handlers([(r"dashboard/?", DashboardHandler), ...])`: routes relative to the service
  prefix; subclass `coursehub.grading.service.handlers.BaseHandler` for hub authentication and
  `self.caller` (set `token_only = False` for browser pages, which then use the hub's OAuth);
- `plugins.after_collect(fn)`: `fn(event: CollectedEvent, core: ExchangeCore)` runs in a worker
  thread after an instructor's collect downloaded submissions (once per download; the plugin
  downloads at most 100 per request, so a large collect gives several events; `event.submissions` are dicts with id,
  student_id, timestamp, late, sha256, blob_path; `core.submission_files(sub)` returns a
  submission's files, checksum verified). Exceptions are logged, never shown to the instructor.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("coursehub.grading.service")


class Plugins:
    def __init__(self) -> None:
        self.handlers: list[tuple] = []
        self.collect_hooks: list[Callable[[Any, Any], None]] = []

    def add_handlers(self, handlers: Iterable[tuple]) -> None:
        self.handlers.extend(handlers)

    def after_collect(self, fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        self.collect_hooks.append(fn)
        return fn

    def run_after_collect(self, event: Any, core: Any) -> None:
        for fn in self.collect_hooks:
            try:
                fn(event, core)
            except Exception:  # noqa: BLE001 - one broken hook must not break collect
                log.exception("after-collect hook %s failed for %s/%s", getattr(fn, "__name__", fn),
                              event.course_id, event.assignment_id)


def load_plugins(names: Iterable[str] = ()) -> Plugins:
    """Import each named module and call its `setup(plugins)`."""
    plugins = Plugins()
    env = [n.strip() for n in os.environ.get("COURSEHUB_GRADING_PLUGINS", "").split(",") if n.strip()]
    for name in [*names, *env]:
        module = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if setup is None:
            raise RuntimeError(f"grading plugin {name!r} has no setup(plugins) function")
        setup(plugins)
        log.info("grading plugin loaded: %s", name)
    return plugins
