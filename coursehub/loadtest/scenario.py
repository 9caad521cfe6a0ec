"""What both scenarios share: the target hub, the test LMS, the run's id (every person is a new
user, so caches are cold as on a real first day), the test instructor, and cleaning up after."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .exchange import SCOPE, Exchange, student_version
from .hubclient import HubSession, StepFailed
from .platform import TestPlatform


def new_run_id() -> str:
    return f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class Scenario:
    hub_url: str
    platform: TestPlatform
    concurrency: int
    grace: float
    progress: bool
    local_course: Any | None = None  # the Course, when the target is this machine's local platform
    service_url: str | None = None  # the grading service's own URL: the exchange skips the proxy, as user servers do
    admin_token: str | None = None
    keep_users: bool = False
    token_ttl: int = 4 * 3600  # the run's tokens expire on their own, even if it is killed
    run_id: str = field(default_factory=new_run_id)
    notes: list[str] = field(default_factory=list)

    def instructor(self) -> tuple[HubSession, str]:
        """The run's test instructor, signed in through the test LMS, and their grading token."""
        s = HubSession(self.hub_url, self.platform, f"{self.run_id}-instructor", role="instructor")
        deadline = time.monotonic() + 120
        s.launch(None, deadline)
        return s, s.token([SCOPE], deadline, expires_in=self.token_ttl)

    def ensure_released(self, exchange: Exchange, token: str) -> bool:
        """True if the test released the assignment (only ever on the local platform)."""
        if exchange.is_released(token):
            return False
        if self.local_course is None:
            raise StepFailed(f"{exchange.assignment_id} of {exchange.course_id} is not released on the target: "
                             "release it first (the formgrader), or choose another with --assignment")
        exchange.release(token, student_version(self.local_course, exchange.assignment_id))
        self.notes.append(f"released {exchange.assignment_id} (its student version) as the test instructor")
        return True

    def delete_users(self, names: list[str]) -> int:
        """With an admin token, remove the run's test users (their servers stop; grades and
        submissions in the grading service stay)."""
        if not self.admin_token or self.keep_users:
            if names:
                self.notes.append(f"{len(names)} test user(s) (LTI subjects {self.run_id}-*) remain on the hub"
                                  + ("" if self.keep_users else " (give --admin-token to remove them)"))
            return 0
        deleted = 0
        for name in names:
            r = requests.delete(f"{self.hub_url}/hub/api/users/{name}", timeout=120,
                                headers={"Authorization": f"token {self.admin_token}"})
            deleted += r.status_code in (204, 404)
        self.notes.append(f"removed {deleted} of {len(names)} test user(s) from the hub")
        return deleted
