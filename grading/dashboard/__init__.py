"""The instructor dashboard, a grading-service plugin: add "coursehub.grading.dashboard" to the
service's plugins (settings `grading.plugins` or $COURSEHUB_GRADING_PLUGINS; entry point `dashboard`).

`setup(context)` mounts the routes of `handlers.dashboard_handlers()` and the course pages of
`pages.page_handlers()` (a student's course page, the staff landing page) under the service prefix. The
periodic LMS grade sender is the service's own (started with it, `grading.lms.runtime`).
"""

from __future__ import annotations


def setup(context) -> None:  # noqa: ANN001 - coursehub.grading.service.plugins.PluginContext
    from .handlers import dashboard_handlers
    from .pages import page_handlers

    context.add_handlers(dashboard_handlers() + page_handlers())
