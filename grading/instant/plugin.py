"""Grading-service plugin: instant feedback on submit (listed in `grading.plugins` by default).

It does nothing for an assignment until course.yaml turns it on (`instant_feedback: true`). After
each new submission the service stored, the hook queues it on the instant pool and the submit
answer says `"instant_feedback": "pending"`; the student's Lab then asks
`api/courses/<course>/assignments/<assignment>/submissions/<id>/instant` until the result is in.
"""

from __future__ import annotations

import logging
from typing import Any

from coursehub.platform.settings import Settings

from ..service.coursedirs import course_dir
from .handlers import ROUTE, InstantFeedbackHandler
from .runner import InstantRunner
from .store import InstantStore

log = logging.getLogger("coursehub.grading.instant")


def make_runner(settings: Settings, store: InstantStore) -> InstantRunner:
    """The pool on the executor the settings choose (the same sandbox as autograding), imported on
    the first instant run: nbgrader's import must not delay the service's start."""

    def make_executor(slot: int):  # noqa: ANN202 - an autograde Executor
        from coursehub.grading.autograde.executors import make_executor

        return make_executor(settings, slot=slot)

    return InstantRunner(store, lambda cid: course_dir(settings, cid), make_executor)


def install(plugins: Any, store: InstantStore, runner: InstantRunner) -> None:
    """Wire a store and a runner into the service (tests pass their own)."""
    plugins.add_handlers([(ROUTE, InstantFeedbackHandler, {"store": store})])

    @plugins.after_submit
    def instant_feedback(info: dict, core: Any) -> dict:
        course = core.catalog().get(info["course_id"])
        return runner.submitted(info, course, lambda: core.submission_files(info))


def setup(context: Any) -> None:
    """`context` is the service's PluginContext (grading/service/plugins.py): its settings, not the environment's."""
    settings = context.settings
    store = InstantStore(settings.storage_dir() / "instant")
    install(context, store, make_runner(settings, store))
