"""Adapters from what the hub side stores to the records the LMS clients use.

What the hub stores, and where, is `coursehub.platform.lti.services`'s to say (the LTI store's URL,
the tool key, the registered platforms, each launch's services); this module only turns those into
the grading side's records (`ServiceRegistration`, `ToolKey`, `LaunchServices`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coursehub.platform.groups import role_rank
from coursehub.platform.lti import services
from coursehub.platform.lti.services import store_url as lti_store_url

from .records import LaunchServices, ServiceRegistration
from .tokens import ToolKey

__all__ = ["StoreServices", "load_tool_key", "lti_store_url", "platforms_from_settings", "registration_from"]


def registration_from(d: dict | Any) -> ServiceRegistration:
    get = d.get if isinstance(d, dict) else lambda k, default=None: getattr(d, k, default)
    return ServiceRegistration(
        name=get("name"), issuer=get("issuer"), token_url=get("token_url"),
        registered_urls=tuple(u for u in (get("auth_login_url"), get("jwks_url")) if u),
        extra_origins=tuple(get("service_origins", ()) or ()),
    )


def platforms_from_settings(settings: Any) -> dict[str, ServiceRegistration]:
    """Every platform the hub registers (settings entries, the local LMS page's in local mode, and
    dynamically registered ones), as `services.registrations` lists them."""
    regs = {p.name: registration_from(p) for p in settings.auth.lti.platforms}
    for reg in services.registrations_beyond_settings(settings):
        regs.setdefault(reg.name, registration_from(reg.to_dict()))
    return regs


def load_tool_key(state_dir: Path) -> ToolKey:
    """The tool key the hub generated; the grading service only reads it, never creates it."""
    pair = services.existing_tool_key(state_dir)
    return ToolKey(pair.private_pem, pair.kid, pair.alg)


def _services(row: dict, platforms: dict[str, ServiceRegistration]) -> LaunchServices | None:
    platform = platforms.get(row["platform"])
    if platform is None or platform.issuer != row["issuer"]:
        return None  # registration removed or changed since the launch: send nothing
    ags = row.get("ags") or {}
    nrps = row.get("nrps") or {}
    return LaunchServices(
        platform=platform, client_id=row["client_id"], course_id=row["course"], username=row["username"],
        lti_user_id=row["subject"], context_id=row.get("context_id", ""),
        lineitems_url=ags.get("lineitems"), lineitem_url=ags.get("lineitem"),
        nrps_url=nrps.get("context_memberships_url"), ags_scopes=tuple(ags.get("scope") or ()),
    )


class StoreServices:
    """`for_student` / `for_course` over the hub's LTI store (anything with `.services(username, course)`)."""

    def __init__(self, store: Any, platforms: dict[str, ServiceRegistration]):
        self.store = store
        self.platforms = platforms

    def for_student(self, course_id: str, student: str) -> LaunchServices | None:
        row = services.launch_services(self.store, student, course_id)
        return _services(row, self.platforms) if row else None

    def for_course(self, course_id: str) -> list[LaunchServices]:
        """One record per LMS context of the course: the newest launch that carried NRPS, staff first."""
        best: dict[tuple[str, str], dict] = {}
        for row in services.course_services(self.store, course_id):
            key = (row["issuer"], row["context_id"])
            cur = best.get(key)
            score = (bool(row.get("nrps")), role_rank(row["role"]), row["updated_at"])
            if cur is None or score > (bool(cur.get("nrps")), role_rank(cur["role"]), cur["updated_at"]):
                best[key] = row
        return [s for s in (_services(r, self.platforms) for r in best.values()) if s is not None]
