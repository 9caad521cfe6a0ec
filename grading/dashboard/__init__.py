"""The instructor dashboard, a grading-service plugin: add "coursehub.grading.dashboard" to the
service's plugins (settings `grading.plugins` or $COURSEHUB_GRADING_PLUGINS).

`setup(plugins)` mounts the routes of `handlers.dashboard_handlers()` under the service prefix. The
periodic LMS grade sender starts with the first dashboard visit (or, better, from the service's
start-up through `coursehub.grading.lms.runtime.start_background_sync(settings)`).
"""

from __future__ import annotations


def setup(plugins) -> None:  # noqa: ANN001 - coursehub.grading.service.plugins.Plugins
    from .handlers import dashboard_handlers

    plugins.add_handlers(dashboard_handlers())
