"""The grading service's page templates (`grading/templates/`), always autoescaped: every value a
page shows comes from course files, the database or the hub, none of it trusted as HTML."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def _points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False)
    env.filters.update(utc=_utc, iso=_iso, points=_points)
    return env


def render(name: str, **context: Any) -> str:
    """Render `grading/templates/<name>`."""
    return environment().get_template(name).render(**context)
