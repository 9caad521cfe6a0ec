"""`loadtest lecture-start`: students launch an assignment from the LMS at the start of a lecture.

Each one is measured from the moment their launch starts to the moment their notebook is usable:
the LTI launch is accepted, their server has started, the assignment is fetched and JupyterLab's
page for it answers, and a kernel started there answers `1+1`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .exchange import Exchange
from .hubclient import HubSession, StepFailed
from .kernel import run_one_plus_one
from .report import Outcome
from .runner import run_open_loop
from .scenario import Scenario


def lecture_start(sc: Scenario, users: int, over: float, assignment: str, keep_servers: bool = False) -> dict:
    """Run the lecture start; the report (see report.build)."""
    from .report import build

    instructor, staff_token = sc.instructor()
    ex = Exchange(sc.hub_url, sc.platform.course_id, assignment)
    released = sc.ensure_released(ex, staff_token)
    sessions: list[HubSession] = []

    def student(i: int, at: float, deadline: float) -> Outcome:
        s = HubSession(sc.hub_url, sc.platform, f"{sc.run_id}-s{i:04d}")
        sessions.append(s)
        stages: dict[str, float] = {}
        t = at
        try:
            location = s.launch(assignment, deadline)
            stages["launch"], t = _lap(t)
            server = s.open(location, deadline)
            stages["open"], t = _lap(t)
            run_one_plus_one(s.http, server, deadline, notebook=s.opened)
            stages["kernel"], t = _lap(t)
        except StepFailed as e:
            return Outcome(ok=False, reason=e.reason, stages=stages)
        except OSError as e:  # requests' connection errors and timeouts
            return Outcome(ok=False, reason=f"connection: {type(e).__name__}", stages=stages)
        return Outcome(ok=True, seconds=time.monotonic() - at, stages=stages)

    outcomes, wall = run_open_loop(users, over, student, concurrency=sc.concurrency, hard_limit=over + sc.grace,
                                   desc="lecture start", progress=sc.progress)
    if not keep_servers:
        stopped = stop_servers(sessions)
        sc.notes.append(f"stopped {stopped} server(s) the test started (--keep-servers keeps them)")
        if released:
            ex.unrelease(staff_token)
            sc.notes.append(f"unreleased {assignment} again")
        sc.delete_users([s.name for s in [instructor, *sessions] if s.name])
    return build("lecture-start", sc.hub_url, users, over, outcomes, wall,
                 {"measured": "launch to usable notebook (kernel answered)", "course": ex.course_id,
                  "assignment": assignment, "notes": sc.notes})


def stop_servers(sessions: list[HubSession]) -> int:
    """Each person stops their own server, as the hub's home page lets them."""
    def stop(s: HubSession) -> int:
        try:
            deadline = time.monotonic() + 60
            if s.name is None:
                s.whoami(deadline)  # a run that failed before its server's URL was known
            s.stop_server(deadline)
            return 1
        except (StepFailed, OSError):
            return 0

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(stop, sessions))


def _lap(since: float) -> tuple[float, float]:
    now = time.monotonic()
    return now - since, now
