"""`loadtest deadline`: every student submits a notebook shortly before a deadline.

The students and the instructor are new hub users signed in through the test LMS, each with a
real hub token (so the grading service's token and group caches are cold, as on a real deadline).
The test instructor releases a fresh assignment of the run, the students submit to it through the
exchange API, and afterwards the instructor reads everything back: lost and duplicated
submissions are counted from what the service stored, not from what the clients believe.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from .exchange import SCOPE, Exchange, notebook_template, unique_archive
from .hubclient import HubSession, StepFailed
from .report import Outcome, account, build
from .runner import run_open_loop
from .scenario import Scenario

#: Attempts per submission (the same upload id each time, as the nbgrader plugin retries).
ATTEMPTS = 3


#: How the students' servers first met the grading service (see `deadline_rush`).
FIRST_CONTACTS = ("launch", "deadline")


def deadline_rush(sc: Scenario, students: int, over: float, size: int, assignment: str | None = None,
                  first_contact: str = "launch") -> dict:
    """Run the deadline rush; the report (see report.build and report.account).

    `first_contact="launch"` (as on a real deadline): each student's server met the grading service
    earlier, when its launch fetched the assignment (here: one listing per student before the rush),
    and the rush starts once the service's answers about their tokens are older than its
    `TOKEN_TTL`, so that it takes the submissions on the hub's earlier word and asks the hub again
    in the background. `"deadline"`: the service sees each token for the first time in the rush and
    asks the hub before storing (a server started after the last four hours, or after a restart of
    the service)."""
    if first_contact not in FIRST_CONTACTS:
        raise ValueError(f"first_contact must be one of {FIRST_CONTACTS}")
    assignment = assignment or sc.run_id
    instructor, staff_token = sc.instructor()
    ex = Exchange(sc.hub_url, sc.platform.course_id, assignment, service_url=sc.service_url)
    if sc.service_url:
        sc.notes.append(f"submissions went straight to the grading service at {sc.service_url}, as the user "
                        "servers' do (--through-proxy: through the hub's proxy)")
    limit = ex.limits(staff_token)["max_submission_bytes"]
    if size > limit:
        raise StepFailed(f"--size {size} is above the grading service's limit of {limit} bytes per submission")
    released = sc.ensure_released(ex, staff_token) if assignment != sc.run_id else _release_fresh(ex, staff_token, sc)
    template = notebook_template(size)
    people = sign_in(sc, students)
    tokens = {s.name: t for s, t in people if t}
    names = list(tokens)
    failed_sign_in = students - len(names)
    if first_contact == "launch":
        met_at = meet_the_service(ex, tokens, sc)
        from coursehub.grading.service.auth import TOKEN_TTL

        wait = met_at + TOKEN_TTL + 1 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sc.notes.append("each student's server met the grading service before the rush (as the launch's "
                        f"assignment fetch does); the rush started {TOKEN_TTL + 1} s later, when the service's "
                        "answers about their tokens were out of date (re-checked with the hub in the background)")
    else:
        sc.notes.append("the grading service saw each student's token for the first time in the rush")

    def submit(i: int, at: float, deadline: float) -> Outcome:
        if i >= len(names):
            return Outcome(ok=False, reason="sign-in failed before the rush")
        name = names[i]
        upload_id = uuid.uuid4().hex
        archive = unique_archive(template)
        out = Outcome(ok=False, student=name, upload_id=upload_id)
        for attempt in range(1, ATTEMPTS + 1):
            out.attempts = attempt
            try:
                out.ack_id = ex.submit(tokens[name], archive, upload_id, timeout=max(1.0, min(
                    120.0, deadline - time.monotonic())))
                out.ok, out.seconds, out.reason = True, time.monotonic() - at, ""
                return out
            except StepFailed as e:
                out.reason = e.reason
                if time.monotonic() >= deadline or "HTTP 4" in e.reason and "HTTP 429" not in e.reason:
                    return out
            time.sleep(0.2 * attempt)
        return out

    window_start = time.time()  # the rush itself, on the wall clock (for per-process CPU read elsewhere)
    outcomes, wall = run_open_loop(students, over, submit, concurrency=sc.concurrency, hard_limit=over + sc.grace,
                                   desc="deadline", progress=sc.progress)
    window = [round(window_start, 3), round(time.time(), 3)]
    stored = [r for r in ex.stored(staff_token) if r.get("student_id") in tokens]  # this run's students only
    counts = account(outcomes, stored)
    if released:
        ex.unrelease(staff_token)
        sc.notes.append(f"unreleased {assignment} again (its submissions stay in the grading service)")
    if failed_sign_in:
        sc.notes.append(f"{failed_sign_in} student(s) could not sign in before the rush")
    sc.delete_users([*names, *([instructor.name] if instructor.name else [])])
    return build("deadline", sc.hub_url, students, over, outcomes, wall, {
        "measured": f"submission acknowledged ({size // 1000} KB, up to {ATTEMPTS} attempts)",
        "course": ex.course_id, "assignment": assignment, **counts, "notes": sc.notes, "window": window})


def meet_the_service(ex: Exchange, tokens: dict[str, str], sc: Scenario) -> float:
    """Each student's server asks the service once whether the assignment is released (as the
    launch's fetch does); returns when the last of them was answered (monotonic)."""
    from tqdm import tqdm

    def one(name: str) -> None:
        try:
            ex.is_released(tokens[name])
        except (StepFailed, OSError):
            pass  # this student's submission is then the service's first contact

    with ThreadPoolExecutor(min(8, sc.concurrency)) as pool:
        list(tqdm(pool.map(one, list(tokens)), total=len(tokens), desc="servers meet the service",
                  disable=not sc.progress))
    return time.monotonic()


def _release_fresh(ex: Exchange, token: str, sc: Scenario) -> bool:
    """A fresh assignment of the run, so that what is read back is this run's and nothing else."""
    ex.release(token, unique_archive(notebook_template(2000)))
    sc.notes.append(f"released a fresh assignment {ex.assignment_id} as the test instructor")
    return True


def sign_in(sc: Scenario, n: int) -> list[tuple[HubSession, str | None]]:
    """The students launch once before the rush (not timed) and each get a grading token."""
    from tqdm import tqdm

    def one(i: int) -> tuple[HubSession, str | None]:
        s = HubSession(sc.hub_url, sc.platform, f"{sc.run_id}-s{i:04d}")
        deadline = time.monotonic() + 120
        try:
            s.launch(None, deadline)
            return s, s.token([SCOPE], deadline, expires_in=sc.token_ttl)
        except (StepFailed, OSError):
            return s, None

    with ThreadPoolExecutor(min(8, sc.concurrency)) as pool:
        return list(tqdm(pool.map(one, range(n)), total=n, desc="signing students in", disable=not sc.progress))
