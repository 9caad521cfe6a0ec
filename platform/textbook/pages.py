"""The textbook service's own pages (the list of books, "being built", errors) from Jinja templates
with autoescape, like the hub's and the grading service's pages; the books themselves are static files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Any:  # noqa: ANN401 - jinja2.Environment, imported on first use
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render(template: str, **context: Any) -> str:
    """`template` (in templates/) with `context`; every value is HTML-escaped unless marked safe."""
    return _environment().get_template(template).render(**context)


def message_page(title: str, message: str, refresh: int | None = None) -> str:
    """A page that says one thing (optionally reloading itself every `refresh` seconds)."""
    return render("message.html", title=title, message=message, refresh=refresh)
