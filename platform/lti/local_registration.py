"""The built-in local LMS page as a registered LTI platform (local mode only).

The page itself lives in `platform/local_lms/`; its registration lives here, beside the other
registrations, so the launch path never depends on the page.
"""

from __future__ import annotations

from ..courses import Catalog, Course, LtiContext
from ..settings import Settings
from .registry import LaunchRegistration

PLATFORM = "local-lms"
CLIENT_ID = "coursehub-local"
DEFAULT_DEPLOYMENT = "local-deployment"


def registration(settings: Settings) -> LaunchRegistration:
    """`local-lms` as a registered platform of this hub (only ever in local mode)."""
    public = settings.public_url()
    internal = f"http://127.0.0.1:{settings.hub.port}"
    deployments = {DEFAULT_DEPLOYMENT}
    try:
        from ..courses import load_catalog

        for course in load_catalog(settings.courses_dir):
            deployments.update(ctx.deployment_id for ctx in local_contexts(course))
    except Exception:  # noqa: BLE001 - course problems are reported by hubconfig, not here
        pass
    return LaunchRegistration(
        name=PLATFORM, issuer=f"{public}/hub/lms", client_ids=(CLIENT_ID,),
        deployment_ids=tuple(sorted(deployments)), auth_login_url=f"{public}/hub/lms/auth",
        jwks_url=f"{internal}/hub/lms/jwks", token_url=f"{public}/hub/lms/token", algorithms=("RS256",),
        local=True,
    )


def local_contexts(course: Course) -> list[LtiContext]:
    return [ctx for ctx in course.lti if ctx.platform in (None, PLATFORM)]


def linked_courses(catalog: Catalog) -> list[tuple[Course, LtiContext]]:
    return [(c, local_contexts(c)[0]) for c in catalog if local_contexts(c)]
