"""Semester capacity planning: enrollments, lecture attendance, per-user guarantees and node sizes
-> nodes per pool, user-placeholder seats and spawn limits.

The model (docs/operators/scaling.md works an example by hand):
- users of a course at time t: its lecture's `enrollment * attendance` while a lecture runs, else
  `enrollment * baseline_share` (homework);
- nodes for a load: the most of CPU, memory and pod count over what one node can allocate;
- students arrive spread over `arrival_minutes` after a lecture starts; a new node takes
  `node_boot_minutes`, so the placeholders must hold the seats of everyone arriving during one
  node boot: `users / arrival_minutes * node_boot_minutes` (at most everyone);
- spawns in flight at the peak arrival rate, each waiting up to one node boot, is the spawn limit
  (never below z2jh's default of 64).
Placeholder seats are pods the size of the largest course guarantee; a smaller course needs only
the matching fraction of a seat per student.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from coursehub.platform.courses import Course, Environment, parse_quantity

from .schedule import Session, ceil, sessions_between, week_start

#: z2jh's default hub.concurrentSpawnLimit: the plan never goes below it.
MIN_SPAWN_LIMIT = 64
GI = 2**30
#: Requests of the pods on the core pool (hub, proxy, grading service, user-scheduler x2,
#: image pullers, scaler): cpu cores, memory bytes. Autograde workers are added per worker.
CORE_REQUESTS = {
    "hub": (1.0, 1 * GI),
    "proxy": (0.5, 512 * 2**20),
    "grading": (0.5, 1 * GI),
    "user-scheduler": (0.1, 512 * 2**20),
}


@dataclass(frozen=True)
class NodeShape:
    cpu: float
    memory: int
    reserved_cpu: float = 0.5
    reserved_memory: int = 2 * GI
    max_pods: int = 100

    @property
    def alloc_cpu(self) -> float:
        return self.cpu - self.reserved_cpu

    @property
    def alloc_memory(self) -> int:
        return self.memory - self.reserved_memory

    def nodes_for(self, cpu: float, memory: float, pods: int) -> int:
        """Nodes needed to hold pods requesting `cpu` cores and `memory` bytes in total."""
        if pods <= 0:
            return 0
        return max(ceil(cpu / self.alloc_cpu), ceil(memory / self.alloc_memory), ceil(pods / self.max_pods))


@dataclass(frozen=True)
class PlanParams:
    node: NodeShape
    node_boot_minutes: float = 5
    arrival_minutes: float = 10
    baseline_share: float = 0.05
    lead_minutes: float = 15
    autograde_workers: int = 2
    autograde_memory: int = 1 * GI
    step_minutes: int = 5


@dataclass(frozen=True)
class Seat:
    """One user-placeholder pod: the largest guarantee of any course."""

    cpu: float
    memory: int

    def per_user(self, env: Environment) -> float:
        return max(env.cpu_guarantee / self.cpu, parse_quantity(env.mem_guarantee) / self.memory)


def seat_for(courses: Iterable[Course]) -> Seat:
    envs = [c.environment for c in courses] or [Environment()]
    return Seat(max(e.cpu_guarantee for e in envs), max(parse_quantity(e.mem_guarantee) for e in envs))


def session_seats(session: Session, course: Course, seat: Seat, p: PlanParams) -> int:
    """Placeholder seats one lecture needs: everyone arriving during one node boot."""
    arriving = min(session.users, session.users / p.arrival_minutes * p.node_boot_minutes)
    return ceil(arriving * seat.per_user(course.environment))


def placeholder_demand(courses: dict[str, Course], sessions: list[Session], at: dt.datetime,
                       p: PlanParams, seat: Seat | None = None) -> int:
    """Seats wanted at `at`: the lectures starting within `lead_minutes` or still filling up."""
    seat = seat or seat_for(courses.values())
    lead, arrival = dt.timedelta(minutes=p.lead_minutes), dt.timedelta(minutes=p.arrival_minutes)
    return sum(session_seats(s, courses[s.course_id], seat, p)
               for s in sessions if s.start - lead <= at < s.start + arrival)


def arrival_rate(sessions: list[Session], at: dt.datetime, p: PlanParams) -> float:
    """Students per minute starting servers at `at`."""
    arrival = dt.timedelta(minutes=p.arrival_minutes)
    return sum(s.users / p.arrival_minutes for s in sessions if s.start <= at < s.start + arrival)


@dataclass
class LectureRow:
    course_id: str
    start: dt.datetime
    minutes: int
    users: int
    per_minute: float
    seats: int


@dataclass
class CapacityPlan:
    seat: Seat
    lectures: list[LectureRow]
    times: list[dt.datetime]
    users: list[int]
    placeholders: list[int]
    peak_users: int
    peak_at: dt.datetime | None
    user_nodes_min: int
    user_nodes_max: int
    core_nodes: int
    placeholder_seats: int
    spawn_limit: int
    peak_arrival_per_minute: float
    notes: list[str] = field(default_factory=list)


def plan(courses: Iterable[Course], p: PlanParams, week_of: dt.datetime) -> CapacityPlan:
    """The plan for the week starting at `week_of` (an aware datetime, normally a Monday 00:00)."""
    by_id = {c.id: c for c in courses}
    end = week_of + dt.timedelta(days=7)
    sessions = sessions_between(by_id.values(), week_of, end)
    seat = seat_for(by_id.values())
    step = dt.timedelta(minutes=p.step_minutes)
    # Evaluate on a regular grid plus every instant where the load changes.
    lead, arrival = dt.timedelta(minutes=p.lead_minutes), dt.timedelta(minutes=p.arrival_minutes)
    instants = {week_of + i * step for i in range(int(dt.timedelta(days=7) / step))}
    for s in sessions:
        instants.update(t for t in (s.start - lead, s.start, s.start + arrival, s.end) if week_of <= t < end)
    times = sorted(instants)

    # Precompute what does not change over the week, as epoch seconds: comparing aware datetimes
    # of different zones costs a UTC-offset lookup each time, and the sweep is instants x sessions.
    own: dict[str, list[tuple[float, float, int]]] = {cid: [] for cid in by_id}
    for sess in sessions:
        own[sess.course_id].append((sess.start.timestamp(), sess.end.timestamp(), sess.users))
    seats_of = [((sess.start - lead).timestamp(), (sess.start + arrival).timestamp(),
                 session_seats(sess, by_id[sess.course_id], seat, p)) for sess in sessions]
    cpu_of = {cid: c.environment.cpu_guarantee for cid, c in by_id.items()}
    mem_of = {cid: parse_quantity(c.environment.mem_guarantee) for cid, c in by_id.items()}
    base_of = {cid: ceil(c.enrollment * p.baseline_share) for cid, c in by_id.items()}

    users, holders, nodes = [], [], []
    for t in (x.timestamp() for x in times):
        per_course = {cid: max(sum(n for a, b, n in own[cid] if a <= t < b), base_of[cid]) for cid in by_id}
        seats = sum(n for up, down, n in seats_of if up <= t < down)
        cpu = sum(n * cpu_of[c] for c, n in per_course.items()) + seats * seat.cpu
        mem = sum(n * mem_of[c] for c, n in per_course.items()) + seats * seat.memory
        total = sum(per_course.values())
        users.append(total)
        holders.append(seats)
        nodes.append(p.node.nodes_for(cpu, mem, total + seats))

    rate = max((arrival_rate(sessions, s.start, p) for s in sessions), default=0.0)
    peak = max(users, default=0)
    core_cpu = sum(c for c, _ in CORE_REQUESTS.values()) + p.autograde_workers * 1.0
    core_mem = sum(m for _, m in CORE_REQUESTS.values()) + p.autograde_workers * p.autograde_memory
    rows = [LectureRow(s.course_id, s.start, int((s.end - s.start).total_seconds() // 60), s.users,
                       s.users / p.arrival_minutes, session_seats(s, by_id[s.course_id], seat, p)) for s in sessions]
    result = CapacityPlan(
        seat=seat, lectures=rows, times=times, users=users, placeholders=holders,
        peak_users=peak, peak_at=times[users.index(peak)] if times and peak else None,
        user_nodes_min=max(min(nodes, default=0), 1 if peak else 0),
        user_nodes_max=max(nodes, default=0),
        core_nodes=max(1, p.node.nodes_for(core_cpu, core_mem, len(CORE_REQUESTS) + p.autograde_workers)),
        placeholder_seats=max(holders, default=0),
        spawn_limit=max(MIN_SPAWN_LIMIT, ceil(rate * p.node_boot_minutes)),
        peak_arrival_per_minute=rate,
    )
    if seat.cpu > p.node.alloc_cpu or seat.memory > p.node.alloc_memory:
        result.notes.append("the largest course guarantee does not fit on one node: use bigger nodes")
    if not sessions:
        result.notes.append("no lecture has a schedule: placeholders stay at 0")
    return result


def params_from_settings(settings, **overrides) -> PlanParams:
    """PlanParams from `settings.kubernetes` (and the grading workers), with optional overrides."""
    k = settings.kubernetes
    node = NodeShape(
        cpu=overrides.pop("node_cpu", None) or k.node_cpu,
        memory=parse_quantity(overrides.pop("node_memory", None) or k.node_memory),
        reserved_cpu=k.node_reserved_cpu,
        reserved_memory=parse_quantity(k.node_reserved_memory),
        max_pods=k.max_pods_per_node,
    )
    values = dict(
        node=node, node_boot_minutes=k.node_boot_minutes, arrival_minutes=k.arrival_minutes,
        baseline_share=k.baseline_share, lead_minutes=k.placeholder_lead_minutes,
        autograde_workers=settings.grading.workers or 2,
        autograde_memory=parse_quantity(settings.grading.sandbox.memory),
    )
    values.update({key: v for key, v in overrides.items() if v is not None})
    return PlanParams(**values)


# ---- deadlines ------------------------------------------------------------------------------

#: Seconds one autograde Job takes end to end (pod start ~20 s + grading ~40 s): the planning
#: figure of docs/operators/scaling.md ("Grading capacity").
GRADE_SECONDS = 60
#: A student's server limit more than this many times its guarantee is overcommitted.
OVERCOMMIT_RATIO = 2.0


@dataclass(frozen=True)
class DeadlineLoad:
    """The autograde rush after one assignment's due time."""

    course: str
    assignment: str
    due: dt.datetime
    submissions: int
    hours_with_workers: float
    workers_for_window: int
    grader_nodes: int


def deadline_loads(courses: Iterable[Course], p: PlanParams, window_hours: float = 2.0) -> list[DeadlineLoad]:
    """For each assignment with a due time: every enrolled student submits at the deadline; how
    long the configured workers take, and how many workers (and nodes for their Job pods, 1 CPU
    and the sandbox memory each) would grade them within `window_hours`."""
    out = []
    for course in courses:
        for a in course.assignments:
            if a.due is None or course.enrollment <= 0:
                continue
            work = course.enrollment * GRADE_SECONDS
            workers = max(1, ceil(work / (window_hours * 3600)))
            nodes = p.node.nodes_for(cpu=workers * 1.0, memory=workers * p.autograde_memory, pods=workers)
            out.append(DeadlineLoad(course.id, a.id, a.due, course.enrollment,
                                    work / max(1, p.autograde_workers) / 3600, workers, nodes))
    return sorted(out, key=lambda d: d.due)


def overcommit_warnings(courses: Iterable[Course]) -> list[str]:
    """Courses whose memory limit is far above the guarantee: a full node can run out of memory
    and the kernel kills student servers (the scheduler only counts guarantees)."""
    warn = []
    for c in courses:
        e = c.environment
        ratio = parse_quantity(e.mem_limit) / max(1, parse_quantity(e.mem_guarantee))
        if ratio > OVERCOMMIT_RATIO:
            warn.append(f"warning: {c.id}: mem_limit {e.mem_limit} is {ratio:.1f}x mem_guarantee {e.mem_guarantee}; "
                        "a full node can run out of memory (raise the guarantee or lower the limit)")
    return warn


def format_deadlines(loads: list[DeadlineLoad], workers: int, tz: dt.tzinfo) -> str:
    if not loads:
        return "deadlines: none with a due time and an enrollment"
    lines = [f"deadlines (every student submits at the due time; {GRADE_SECONDS} s per submission; "
             f"{workers} worker(s) configured):"]
    for d in loads:
        lines.append(f"  {d.course}/{d.assignment} due {d.due.astimezone(tz):%Y-%m-%d %H:%M}: {d.submissions} "
                     f"submissions, {d.hours_with_workers:.1f} h with {workers} worker(s); "
                     f"{d.workers_for_window} worker(s) and {d.grader_nodes} grader node(s) grade them in 2 h")
    return "\n".join(lines)


# ---- output ---------------------------------------------------------------------------------


def format_plan(result: CapacityPlan, tz: dt.tzinfo) -> str:
    lines = []
    rows = [("COURSE", "LECTURE", "MIN", "USERS", "ARRIVE/MIN", "SEATS")]
    for r in result.lectures:
        rows.append((r.course_id, r.start.astimezone(tz).strftime("%a %H:%M"), str(r.minutes), str(r.users),
                     f"{r.per_minute:.1f}", str(r.seats)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    peak_at = result.peak_at.astimezone(tz).strftime("%a %H:%M %Z") if result.peak_at else "-"
    mem_gi = result.seat.memory / GI
    lines += [
        "",
        f"peak concurrent users      {result.peak_users} ({peak_at})",
        f"user pool nodes            min {result.user_nodes_min}, max {result.user_nodes_max}",
        f"core pool nodes            {result.core_nodes}",
        f"placeholder seats          {result.placeholder_seats} (each {result.seat.cpu:g} CPU, {mem_gi:g} GiB)",
        f"peak arrivals              {result.peak_arrival_per_minute:.1f} per minute",
        f"hub.concurrentSpawnLimit   {result.spawn_limit}",
    ]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def write_plot(result: CapacityPlan, path: Path, tz: dt.tzinfo) -> None:
    """Expected concurrent users (and placeholder seats) over the week, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4), dpi=100)
    times = [t.astimezone(tz) for t in result.times]
    ax.step(times, result.users, where="post", label="expected concurrent users")
    ax.step(times, result.placeholders, where="post", label="placeholder seats", linestyle="--")
    ax.set_ylabel("users / seats")
    ax.set_title(f"Expected concurrent users over the week (peak {result.peak_users})")
    ax.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d", tz=tz))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---- command --------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file")
    p.add_argument("--courses-dir", type=Path, help="folder of courses (default: from the settings)")
    p.add_argument("--week", type=dt.date.fromisoformat, help="any day of the week to plan (default: today)")
    p.add_argument("--timezone", default=None, help="time zone for the table and plot (default: the first lecture's)")
    p.add_argument("--enrollment", action="append", default=[], metavar="COURSE=N",
                   help="override a course's enrollment (repeatable)")
    p.add_argument("--node-cpu", type=float, help="CPU cores per user node")
    p.add_argument("--node-memory", help="memory per user node, e.g. 64Gi")
    p.add_argument("--plot", type=Path, default=Path("capacity.png"), help="where to write the PNG plot")


def _with_enrollments(courses: list[Course], overrides: list[str]) -> list[Course]:
    wanted = {}
    for item in overrides:
        cid, sep, n = item.partition("=")
        if not sep or not n.isdigit():
            raise ValueError(f"--enrollment expects COURSE=N, got {item!r}")
        wanted[cid] = int(n)
    unknown = set(wanted) - {c.id for c in courses}
    if unknown:
        raise ValueError(f"--enrollment names unknown course(s): {', '.join(sorted(unknown))}")
    return [c.model_copy(update={"enrollment": wanted[c.id]}) if c.id in wanted else c for c in courses]


def run(args: argparse.Namespace) -> int:
    import sys

    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    try:
        settings = load_settings(args.settings)
        courses = list(load_catalog(args.courses_dir or settings.courses_dir))
        courses = _with_enrollments(courses, args.enrollment)
        params = params_from_settings(settings, node_cpu=args.node_cpu, node_memory=args.node_memory)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    tz_name = args.timezone or next((lec.timezone for c in courses for lec in c.schedule), "UTC")
    tz = ZoneInfo(tz_name)
    start = week_start(args.week or dt.datetime.now(tz).date(), tz)
    result = plan(courses, params, start)
    print(format_plan(result, tz))
    write_plot(result, args.plot, tz)
    print(f"plot written to {args.plot}")
    print(format_deadlines(deadline_loads(courses, params), params.autograde_workers, tz))
    for line in overcommit_warnings(courses):
        print(line)
    return 0
