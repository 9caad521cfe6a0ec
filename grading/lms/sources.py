"""Adapters from what the hub side stores to the records the LMS clients use.

- Platforms: `settings.auth.lti.platforms` (plus the local LMS page's registration in local mode).
- Launch services: the LTI store's `coursehub_lti_launch_services` rows (one per user and course,
  newest launch), written by `coursehub.platform.lti` at each launch.
- Tool key: the PEM the hub generated on first start (`<state_dir>/lti/tool-key.pem`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coursehub.platform.groups import role_rank

from .records import LaunchServices, ServiceRegistration
from .tokens import ToolKey


def registration_from(d: dict | Any) -> ServiceRegistration:
    get = d.get if isinstance(d, dict) else lambda k, default=None: getattr(d, k, default)
    return ServiceRegistration(
        name=get("name"), issuer=get("issuer"), token_url=get("token_url"),
        registered_urls=tuple(u for u in (get("auth_login_url"), get("jwks_url")) if u),
        extra_origins=tuple(get("service_origins", ()) or ()),
    )


def platforms_from_settings(settings: Any) -> dict[str, ServiceRegistration]:
    """Every registered platform (with the local LMS page's in local mode), as the hub sees them."""
    regs = {p.name: registration_from(p) for p in settings.auth.lti.platforms}
    if getattr(settings, "local", False) and settings.auth.lti.local_lms:
        from coursehub.platform.lti.local_registration import PLATFORM as LOCAL_LMS
        from coursehub.platform.lti.local_registration import registration

        regs.setdefault(LOCAL_LMS, registration_from(registration(settings).to_dict()))
    if getattr(settings, "state_dir", None) is not None and getattr(settings, "hub", None) is not None:
        from coursehub.platform.lti.services import dynamic_registrations

        for reg in dynamic_registrations(settings):  # registered through LTI Dynamic Registration
            regs.setdefault(reg.name, registration_from(reg.to_dict()))
    return regs


def lti_store_url(settings: Any) -> str:
    """Where the hub keeps its LTI tables (one rule, owned by the LTI side)."""
    from coursehub.platform.lti.services import store_url

    return store_url(settings)


def load_tool_key(state_dir: Path) -> ToolKey:
    """The tool key the hub generated; the grading service only reads it, never creates it."""
    from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path

    path = tool_key_path(Path(state_dir))
    if not path.exists():
        raise FileNotFoundError(f"no LTI tool key at {path}: start the hub once (it generates the key), "
                                "or copy the hub's key there")
    pair = load_or_create_key_pair(path)
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
        rows = self.store.services(username=student, course=course_id)
        return _services(rows[0], self.platforms) if rows else None

    def for_course(self, course_id: str) -> list[LaunchServices]:
        """One record per LMS context of the course: the newest launch that carried NRPS, staff first."""
        best: dict[tuple[str, str], dict] = {}
        for row in self.store.services(course=course_id):
            key = (row["issuer"], row["context_id"])
            cur = best.get(key)
            score = (bool(row.get("nrps")), role_rank(row["role"]), row["updated_at"])
            if cur is None or score > (bool(cur.get("nrps")), role_rank(cur["role"]), cur["updated_at"]):
                best[key] = row
        return [s for s in (_services(r, self.platforms) for r in best.values()) if s is not None]
