"""`coursehub loadtest`: arguments, hard caps and the target guard; the scenarios do the work.

Everything is bounded (people, window, size, time) and refused with a clear message beyond that:
this tool creates users and starts servers on the hub it points at. It talks to this machine's
local platform unless told otherwise; another hub needs `--target` and an admin token of it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

MAX_USERS = 500            # lecture-start: each one starts a server
MAX_STUDENTS = 5000        # deadline
MAX_LECTURE_WINDOW = 3600  # seconds
MAX_DEADLINE_WINDOW = 2 * 3600
MIN_SIZE, MAX_SIZE = 1000, 20_000_000
MAX_GRACE = 3600
MAX_CONCURRENCY = 512
ADMIN_TOKEN_ENV = "COURSEHUB_ADMIN_TOKEN"
PLATFORM_FLAGS = ("platform_key", "issuer", "client_id", "deployment_id", "context_id", "course")

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_duration(text: str) -> float:
    """'90s', '5m', '1h30m' or plain seconds."""
    m = _DURATION.match(text.strip().lower())
    if not text.strip() or not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 5m, 1h30m)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def parse_size(text: str) -> int:
    """'200KB' (1000 bytes a KB), '1MiB', or plain bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 200KB, 1MB)")
    return int(float(m[1]) * _UNITS[m[2].lower() if m[2] else None])


def bounded(parse, low: float, high: float, what: str, show=str):  # noqa: ANN001, ANN201 - argparse type factory
    """An argparse type: `parse`, then refuse values outside [low, high] saying why."""
    def check(text: str):  # noqa: ANN202
        value = parse(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text} is outside {show(low)}..{show(high)} ({what})")
        return value
    return check


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _secs(v: float) -> str:
    return f"{v / 60:g}m" if v >= 60 else f"{v:g}s"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    t = common.add_argument_group("target (default: this machine's local platform, `coursehub up`)")
    t.add_argument("--target", metavar="URL", help="the hub's public URL; anything but 127.0.0.1 needs --admin-token")
    t.add_argument("--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV),
                   help=f"an admin token of the target hub (default: ${ADMIN_TOKEN_ENV}); with it the test users "
                        "are removed afterwards")
    t.add_argument("--settings", type=Path, help="local platform: its settings file")
    t.add_argument("--state-dir", type=Path, default=None,
                   help="local platform: its state folder (default .coursehub/, as `coursehub up`)")
    t.add_argument("--course", help="course id (local default: the first course linked to the local LMS)")
    lms = common.add_argument_group("test LMS registered on another hub (all needed with --target)")
    lms.add_argument("--platform-key", type=Path, metavar="PEM", help="the test platform's private RSA key")
    lms.add_argument("--issuer", help="the test platform's issuer, as registered")
    lms.add_argument("--client-id", help="the client id registered for the test platform")
    lms.add_argument("--deployment-id", help="a deployment id registered for the test platform")
    lms.add_argument("--context-id", help="the LTI context id that maps to --course")
    lms.add_argument("--key-id", help="the key's kid in the platform's JWKS (default: its RFC 7638 thumbprint)")
    run = common.add_argument_group("run")
    run.add_argument("--concurrency", type=bounded(_int, 1, MAX_CONCURRENCY, "client threads"),
                     help="client threads (default: one per person, at most 256)")
    run.add_argument("--grace", type=bounded(parse_duration, 0, MAX_GRACE, "time allowed after the window",
                                             _secs),
                     help="hard limit after the window for the last ones to finish (default 10m lecture-start, "
                          "5m deadline)")
    run.add_argument("--keep-users", action="store_true", help="do not remove the test users (with --admin-token)")
    run.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="live progress on stderr (default: when stderr is a terminal)")

    sub = p.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    ls = sub.add_parser("lecture-start", parents=[common], help="students launch an assignment from the LMS at once",
                        description="LTI 1.3 launches through the test LMS, each followed by the server start, "
                                    "the assignment opening and a kernel answering 1+1.")
    ls.add_argument("--users", required=True, type=bounded(_int, 1, MAX_USERS, "each starts a server"),
                    help=f"students launching (new hub users; at most {MAX_USERS})")
    ls.add_argument("--over", default=0.0, type=bounded(parse_duration, 0, MAX_LECTURE_WINDOW, "arrival window",
                                                         _secs), help="arrival window (default 0: all at once)")
    ls.add_argument("--assignment", help="assignment to open (default: the course's first); must be released, "
                                         "except on the local platform where the test releases it")
    ls.add_argument("--keep-servers", action="store_true", help="leave the started servers running")
    dl = sub.add_parser("deadline", parents=[common], help="students submit a notebook before a deadline",
                        description="Submissions with real hub tokens through the grading service's exchange API, "
                                    "then read back: lost and duplicated submissions.")
    dl.add_argument("--students", required=True, type=bounded(_int, 1, MAX_STUDENTS, "submitting students"),
                    help=f"students submitting once each (new hub users; at most {MAX_STUDENTS})")
    dl.add_argument("--over", default=0.0, type=bounded(parse_duration, 0, MAX_DEADLINE_WINDOW, "arrival window",
                                                         _secs), help="arrival window (default 0: all at once)")
    dl.add_argument("--size", default=200_000, type=bounded(parse_size, MIN_SIZE, MAX_SIZE, "notebook bytes"),
                    help="notebook size (default 200KB)")
    dl.add_argument("--assignment", help="submit to this released assignment (default: a fresh one the test "
                                         "releases and unreleases)")
    dl.add_argument("--first-contact", choices=("launch", "deadline"), default="launch",
                    help="when the students' servers first met the grading service: at their launch, before "
                         "the rush, as on a real deadline (default; the rush starts once the service's answers "
                         "about their tokens are out of date, 31 s later), or in the rush itself (every token new "
                         "to the service)")
    dl.add_argument("--through-proxy", action="store_true",
                    help="submit through the hub's proxy (the public URL); by default the local platform's "
                         "submissions go straight to the grading service, as the user servers' do (with "
                         "--target they always go through the proxy: the service is inside the cluster)")


def is_loopback_url(url: str) -> bool:
    """Only a loopback address or 'localhost' (a name like 127.0.0.1.example.com is not)."""
    import ipaddress

    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(args: argparse.Namespace) -> list[str]:
    """What is wrong with the target flags (empty when they are fine)."""
    problems = []
    if args.target:
        parsed = urlparse(args.target)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return [f"--target {args.target!r} is not an http(s) URL"]
        if not is_loopback_url(args.target) and not args.admin_token:
            problems.append(f"--target {parsed.hostname} is not this machine: give an admin token of that hub "
                            f"(--admin-token or ${ADMIN_TOKEN_ENV}) to show you operate it")
    given = [f for f in PLATFORM_FLAGS if getattr(args, f, None)]
    remote = args.target and not is_loopback_url(args.target)
    if (remote or given) and len(given) < len(PLATFORM_FLAGS) and not (given == ["course"] and not remote):
        missing = [f"--{f.replace('_', '-')}" for f in PLATFORM_FLAGS if f not in given]
        problems.append("a test LMS on another hub needs all of its flags; missing: " + ", ".join(missing))
    if any(getattr(args, f, None) for f in PLATFORM_FLAGS[:-1]) and not args.target:
        problems.append("the test LMS flags (--platform-key, --issuer, ...) need --target")
    return problems


def check_admin_token(hub_url: str, token: str) -> str | None:
    """None if `token` is an admin token of the hub, else why not."""
    import requests

    try:
        r = requests.get(f"{hub_url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    except requests.RequestException as e:
        return f"cannot reach {hub_url}: {type(e).__name__}"
    if r.status_code != 200:
        return f"the hub did not accept --admin-token (HTTP {r.status_code})"
    model = r.json()
    if not (model.get("admin") or "admin:users" in model.get("scopes", [])):
        return "--admin-token is not an admin token (it lacks admin:users)"
    return None


def run(args: argparse.Namespace) -> int:
    import requests

    from .hubclient import StepFailed
    from .report import render

    problems = check_target(args)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 2
    try:
        sc, default_assignment = _scenario(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.admin_token:
        why = check_admin_token(sc.hub_url, args.admin_token)
        if why:
            print(f"error: {why}", file=sys.stderr)
            return 2
    try:
        if args.scenario == "lecture-start":
            from .launches import lecture_start

            report = lecture_start(sc, args.users, args.over, args.assignment or default_assignment,
                                   keep_servers=args.keep_servers)
        else:
            from .submissions import deadline_rush

            report = deadline_rush(sc, args.students, args.over, args.size, args.assignment, args.first_contact)
    except StepFailed as e:
        print(f"error: could not prepare the run: {e.reason}", file=sys.stderr)
        return 1
    except requests.RequestException as e:
        print(f"error: cannot reach the hub at {sc.hub_url}: {type(e).__name__}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0 if not report["failed"] and not report.get("lost") and not report.get("duplicated") else 1


def _scenario(args: argparse.Namespace):  # noqa: ANN202 - (Scenario, default assignment)
    from .platform import TestPlatform, key_and_kid, local_platform
    from .scenario import Scenario

    course = service = None
    if args.platform_key:
        pem, kid = key_and_kid(args.platform_key, args.key_id)
        platform = TestPlatform(issuer=args.issuer, client_id=args.client_id, deployment_id=args.deployment_id,
                                context_id=args.context_id, course_id=args.course, key_pem=pem, kid=kid)
        url = args.target
        default_assignment = None
    else:
        state_dir = args.state_dir or (None if args.settings else Path(".coursehub"))
        local = local_platform(args.settings, state_dir, args.course)
        url, platform, course = args.target or local.url, local.platform, local.course
        if not args.target and args.scenario == "deadline" and not args.through_proxy:
            service = local.service_url
        default_assignment = course.assignments[0].id if course.assignments else None
    if args.scenario == "lecture-start" and not (args.assignment or default_assignment):
        raise ValueError("name the assignment to open with --assignment")
    people = args.users if args.scenario == "lecture-start" else args.students
    grace = args.grace if args.grace is not None else (600.0 if args.scenario == "lecture-start" else 300.0)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    return Scenario(hub_url=url.rstrip("/"), platform=platform, concurrency=args.concurrency or min(people, 256),
                    grace=grace, progress=progress, local_course=course, admin_token=args.admin_token,
                    keep_users=args.keep_users, service_url=service), default_assignment
