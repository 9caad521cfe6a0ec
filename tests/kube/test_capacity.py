"""The capacity planner against cases worked by hand (docs/operators/scaling.md shows case 1)."""

from __future__ import annotations

import argparse
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coursehub.platform.kube import capacity
from coursehub.platform.kube.capacity import GI, NodeShape, PlanParams, plan
from coursehub.platform.kube.schedule import sessions_between, week_start

from .conftest import write_course

UTC = dt.UTC
NODE = NodeShape(cpu=8, memory=32 * GI, reserved_cpu=0.5, reserved_memory=2 * GI, max_pods=100)
PARAMS = PlanParams(node=NODE, node_boot_minutes=5, arrival_minutes=10, baseline_share=0.05, lead_minutes=15)


def test_demo_course_by_hand(demo_catalog):
    """300 enrolled, 80% attend (240), 0.25 CPU / 512Mi each, 8-CPU/32Gi nodes (7.5 CPU, 30Gi free).

    - 24 students/min arrive for 10 min; a node boots in 5 min -> 120 placeholder seats;
    - lecture start: 240 users + 120 seats = 360 * 0.25 CPU = 90 CPU -> 12 nodes (CPU-bound);
    - off-peak 5% = 15 users -> 1 node; spawn limit 24/min * 5 min = 120.
    """
    tz = ZoneInfo("Europe/Berlin")
    p = plan(demo_catalog, PARAMS, week_start(dt.date(2026, 11, 25), tz))
    assert [(r.course_id, r.start.astimezone(tz).strftime("%a %H:%M"), r.users, r.seats) for r in p.lectures] == [
        ("demo-101", "Mon 10:00", 240, 120), ("demo-101", "Wed 10:00", 240, 120)]
    assert p.peak_users == 240
    assert p.peak_at.astimezone(tz).strftime("%a %H:%M") == "Mon 10:00"
    assert (p.user_nodes_min, p.user_nodes_max, p.core_nodes) == (1, 12, 1)
    assert p.placeholder_seats == 120
    assert p.spawn_limit == 120
    assert p.peak_arrival_per_minute == pytest.approx(24)


def test_two_courses_sharing_a_start_time(two_courses):
    """stats-200: 400 * 0.75 = 300 users at 0.5 CPU/1Gi; ml-300: 60 * 0.5 = 30 users at 1 CPU/4Gi.

    Seat = the largest guarantee (1 CPU, 4Gi); a stats student needs half a seat.
    - Tue: stats arrives at 30/min -> 150 during a boot -> 75 seats; spawn 150.
    - Thu 09:00 both start: 75 + ml min(30, 15) = 15 -> 90 seats; 33/min -> spawn limit 165.
    - Thu arrival window: CPU 300*0.5 + 30*1 + 90*1 = 270 -> 36 nodes (memory needs 26).
    - off-peak: stats 20 users (10 CPU, 20Gi) + ml 3 (3 CPU, 12Gi) -> 13 CPU -> 2 nodes.
    """
    p = plan(two_courses, PARAMS, week_start(dt.date(2026, 11, 25), UTC))
    seats = {(r.course_id, r.start.strftime("%a")): r.seats for r in p.lectures}
    assert seats == {("stats-200", "Tue"): 75, ("stats-200", "Thu"): 75, ("ml-300", "Thu"): 15}
    assert (p.seat.cpu, p.seat.memory) == (1, 4 * GI)
    assert p.placeholder_seats == 90
    assert p.spawn_limit == 165
    assert p.peak_users == 330
    assert (p.user_nodes_min, p.user_nodes_max) == (2, 36)


def test_small_course_keeps_the_chart_spawn_limit(tmp_path):
    from coursehub.platform.courses import load_catalog

    write_course(tmp_path / "c", "tiny-1", enrollment=20,
                 schedule=[{"days": ["fri"], "start": "14:00", "minutes": 60, "attendance": 1}])
    p = plan(load_catalog(tmp_path / "c"), PARAMS, week_start(dt.date(2026, 11, 25), UTC))
    assert p.placeholder_seats == 10  # 2/min for 5 minutes
    assert p.spawn_limit == capacity.MIN_SPAWN_LIMIT
    assert p.user_nodes_max == 1


def test_memory_and_pod_bound_nodes():
    node = NodeShape(cpu=64, memory=16 * GI, reserved_cpu=0, reserved_memory=0, max_pods=10)
    assert node.nodes_for(cpu=1, memory=33 * GI, pods=3) == 3  # memory-bound
    assert node.nodes_for(cpu=1, memory=1 * GI, pods=25) == 3  # pod-bound
    assert node.nodes_for(cpu=0, memory=0, pods=0) == 0


def test_lectures_follow_daylight_saving(demo_catalog):
    """10:00 Berlin is 09:00 UTC in winter and 08:00 UTC in summer."""
    winter = sessions_between(demo_catalog, dt.datetime(2026, 3, 23, tzinfo=UTC), dt.datetime(2026, 3, 24, tzinfo=UTC))
    summer = sessions_between(demo_catalog, dt.datetime(2026, 3, 30, tzinfo=UTC), dt.datetime(2026, 3, 31, tzinfo=UTC))
    assert [s.start.astimezone(UTC).hour for s in winter] == [9]
    assert [s.start.astimezone(UTC).hour for s in summer] == [8]


def test_naive_times_are_refused(demo_catalog):
    with pytest.raises(ValueError, match="aware"):
        sessions_between(demo_catalog, dt.datetime(2026, 3, 23), dt.datetime(2026, 3, 24))


def test_command_prints_table_and_writes_png(tmp_path, capsys, two_courses):
    out = tmp_path / "week.png"
    courses_dir = next(iter(two_courses)).folder.parent
    args = argparse.Namespace(settings=None, courses_dir=courses_dir, week=dt.date(2026, 11, 25),
                              timezone="UTC", enrollment=["ml-300=120"], node_cpu=None, node_memory=None, plot=out)
    assert capacity.run(args) == 0
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines()]
    assert ["ml-300", "Thu", "09:00", "120", "60", "6.0", "30"] in rows  # enrollment override: 120 * 0.5
    assert "hub.concurrentSpawnLimit" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_command_rejects_bad_enrollment_override(tmp_path, capsys, two_courses):
    courses_dir = next(iter(two_courses)).folder.parent
    for bad in ("ml-300", "nosuch=3"):
        args = argparse.Namespace(settings=None, courses_dir=courses_dir, week=None, timezone=None,
                                  enrollment=[bad], node_cpu=None, node_memory=None, plot=tmp_path / "x.png")
        assert capacity.run(args) == 1
    err = capsys.readouterr().err
    assert "COURSE=N" in err and "nosuch" in err
    assert not (tmp_path / "x.png").exists()


def test_deadline_rush_and_memory_overcommit(two_courses):
    import datetime as dt

    from coursehub.platform.courses import Assignment

    stats = two_courses.get("stats-200")
    stats = stats.model_copy(update={"assignments": [Assignment(id="hw1", due=dt.datetime(2026, 12, 1, 23, 59,
                                                                                          tzinfo=dt.UTC))]})
    params = PlanParams(node=NodeShape(cpu=8, memory=32 * GI), autograde_workers=2, autograde_memory=GI)
    (load,) = capacity.deadline_loads([stats], params)
    # 400 submissions x 60 s = 24000 s: 3.3 h with 2 workers; 4 workers grade them in 2 h (one node)
    assert load.submissions == 400 and round(load.hours_with_workers, 1) == 3.3
    assert load.workers_for_window == 4 and load.grader_nodes == 1
    ml = two_courses.get("ml-300").model_copy(update={"environment": two_courses.get("ml-300").environment.model_copy(
        update={"mem_limit": "16Gi"})})
    (warning,) = capacity.overcommit_warnings([stats, ml])
    assert "ml-300" in warning and "4.0x" in warning
