"""The roster metrics: every NRPS sync is counted by outcome (ok, incomplete, failed), and the
people it added to or removed from course groups, through the grading metrics registry."""

from __future__ import annotations

import pytest
from fakelms.ags import Fault

from coursehub.grading import metrics
from coursehub.grading.lms.roster import sync_roster
from coursehub.grading.lms.services import LmsServiceError

from .conftest import launch
from .test_lms_roster import INSTRUCTOR, TA, Names, Recorder, member


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


def counts() -> dict[str, float]:
    return {**{o: sample("coursehub_grading_lms_roster_syncs_total", outcome=o) for o in metrics.ROSTER_OUTCOMES},
            **{c: sample("coursehub_grading_lms_roster_members_total", change=c) for c in metrics.ROSTER_CHANGES}}


def delta(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in counts().items() if v != before[k]}


def test_every_series_exists_before_the_first_sync():
    text = metrics.exposition().decode()
    for outcome in ("ok", "incomplete", "failed"):
        assert f'coursehub_grading_lms_roster_syncs_total{{outcome="{outcome}"}}' in text
    for change in ("added", "removed"):
        assert f'coursehub_grading_lms_roster_members_total{{change="{change}"}}' in text


async def test_syncs_and_member_changes_are_counted(sessions, platform, lms, client):
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    lms.members["ctx1"] = [member("ann"), member("bob"), member("prof", INSTRUCTOR), member("tim", TA)]
    before = counts()
    await sync_roster(sessions, client, svc, groups, Names())
    assert delta(before) == {"ok": 1, "added": 4}

    lms.members["ctx1"] = [member("ann"), member("bob"), member("prof", INSTRUCTOR)]  # the TA leaves
    before = counts()
    report = await sync_roster(sessions, client, svc, groups, Names())
    assert report.removed == [("fake-tim", "ta")]
    assert delta(before) == {"ok": 1, "removed": 1}

    before = counts()
    await sync_roster(sessions, client, svc, groups, Names())  # nothing changed: a sync, no changes
    assert delta(before) == {"ok": 1}

    lms.loop_pages = True  # an unreliable walk marks nobody, and says so
    before = counts()
    assert not (await sync_roster(sessions, client, svc, groups, Names())).complete
    assert delta(before) == {"incomplete": 1}


async def test_a_failing_roster_is_counted_and_still_raises(sessions, platform, lms, client):
    svc = launch(platform, lms, "prof")
    lms.members["ctx1"] = [member("ann")]
    lms.faults.append(Fault("memberships", 500, times=3))
    before = counts()
    with pytest.raises(LmsServiceError):
        await sync_roster(sessions, client, svc, Recorder(), Names())
    assert delta(before) == {"failed": 1}
