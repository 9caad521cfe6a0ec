"""coursehub's nbgrader Exchange plugin: the seven roles of nbgrader 0.9's ExchangeFactory,
backed by the grading service. A user server is configured with (see `factory_config()`):

    c.ExchangeFactory.exchange = "coursehub.grading.exchange.CoursehubExchange"
    c.ExchangeFactory.release_assignment = "coursehub.grading.exchange.ExchangeReleaseAssignment"
    ... (FACTORY_CLASSES)
    c.CoursehubExchange.service_url = "http://127.0.0.1:8090/services/grading/"

User servers also load `coursehub.grading.exchange.panel`, a Jupyter server extension that replaces
nbgrader's `assignment_list` one: the Assignments panel's exchange calls run off the server's event
loop, failures arrive as one sentence, a late submit is announced first and receipted after.

The classes are imported lazily, so `coursehub.grading.exchange.launch` (used by the hub) does
not pull nbgrader into the hub process.
"""

from __future__ import annotations

import importlib
from typing import Any

#: ExchangeFactory trait -> class path.
FACTORY_CLASSES = {
    "exchange": "coursehub.grading.exchange.CoursehubExchange",
    "release_assignment": "coursehub.grading.exchange.ExchangeReleaseAssignment",
    "fetch_assignment": "coursehub.grading.exchange.ExchangeFetchAssignment",
    "submit": "coursehub.grading.exchange.ExchangeSubmit",
    "collect": "coursehub.grading.exchange.ExchangeCollect",
    "list": "coursehub.grading.exchange.ExchangeList",
    "release_feedback": "coursehub.grading.exchange.ExchangeReleaseFeedback",
    "fetch_feedback": "coursehub.grading.exchange.ExchangeFetchFeedback",
}

_MODULES = {
    "CoursehubExchange": "base", "ExchangeReleaseAssignment": "release", "ExchangeReleaseFeedback": "release",
    "ExchangeFetchAssignment": "fetch", "ExchangeFetchFeedback": "fetch", "ExchangeSubmit": "submit",
    "ExchangeCollect": "collect", "ExchangeList": "list",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def factory_config(service_url: str, path_includes_course: bool = False) -> dict:
    """The traitlets config (as a dict) that switches nbgrader to this exchange."""
    return {
        "ExchangeFactory": dict(FACTORY_CLASSES),
        "CoursehubExchange": {"service_url": service_url, "path_includes_course": path_includes_course},
    }


__all__ = ["FACTORY_CLASSES", "factory_config", *_MODULES]
