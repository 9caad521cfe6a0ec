"""Course membership as JupyterHub groups: logins add to what a user has, never take away.

JupyterHub's `manage_groups` replaces a user's groups with whatever the authenticator returns.
A launch from one course must not drop the person's other courses, so authenticators return the
union of the groups the user already has and the ones this login grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def existing_groups(handler: Any, username: str) -> set[str]:
    """Group names the hub user `username` has now (empty for a new user)."""
    if handler is None:
        return set()
    user = handler.find_user(username)
    return {g.name for g in user.groups} if user is not None else set()


def merged_groups(handler: Any, username: str, granted: Iterable[str]) -> list[str]:
    return sorted(existing_groups(handler, username) | set(granted))
