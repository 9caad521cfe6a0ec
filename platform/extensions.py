"""Hub extensions: the parts of coursehub outside the hub side (the grading service) add their hub
services, roles and user-server configuration through the `coursehub.hub_extensions` entry-point group,
so `platform/` never imports them (docs/architecture.md lists the allowed import directions).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from .courses import Catalog
from .settings import Settings

GROUP = "coursehub.hub_extensions"


class HubExtension(Protocol):
    """What an extension offers the hub config (see `coursehub.grading.service.hub.HUB_EXTENSION`)."""

    name: str

    def enabled(self, settings: Settings) -> bool: ...

    def configure(self, c: Any, settings: Settings, catalog: Catalog, services: list[dict], roles: list[dict]) -> None:
        """Add the extension's hub services and role grants, and its user-server environment."""

    def nbgrader_config(self, settings: Settings, *, staff: bool) -> str:
        """The `nbgrader_config.py` user servers of that kind get ('' for none)."""


@cache
def hub_extensions() -> tuple[HubExtension, ...]:
    """The installed extensions, in name order."""
    return tuple(ep.load() for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name))
