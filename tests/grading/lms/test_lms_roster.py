"""NRPS roster sync: all pages, loop-safe, groups and gradebook, leavers marked not deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from nbgrader.api import Gradebook
from sqlalchemy import select

from coursehub.grading.gradebook import create_gradebook
from coursehub.grading.lms.guard import ForeignServiceURL
from coursehub.grading.lms.models import RosterRow
from coursehub.grading.lms.roster import GradebookSink, sync_roster

from .conftest import launch

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def member(uid: str, role: str = LEARNER, status: str = "Active", **kw) -> dict:
    return {"user_id": uid, "roles": [role], "status": status, "given_name": uid.title(),
            "family_name": "Tester", "name": f"{uid.title()} Tester", "email": f"{uid}@uni.example", **kw}


class Recorder:
    """Groups sink stand-in (the hub API client is HubGroupsSink)."""

    def __init__(self):
        self.groups: dict[tuple[str, str], set[str]] = {}

    async def add_members(self, course_id, role, usernames):
        self.groups.setdefault((course_id, role), set()).update(usernames)

    async def remove_members(self, course_id, role, usernames):
        self.groups.setdefault((course_id, role), set()).difference_update(usernames)

    def ensure_students(self, students):
        pass


class Names:
    def username_for(self, platform, uid, name, email):
        return f"fake-{uid}"


@pytest.fixture
def gradebook_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    create_gradebook(url)
    return url


def roster(sessions) -> dict[str, RosterRow]:
    with sessions() as s:
        return {r.lti_user_id: r for r in s.scalars(select(RosterRow))}


async def test_roster_all_pages_groups_gradebook_and_leavers(sessions, platform, lms, client, gradebook_url):
    lms.members["ctx1"] = [member("ann"), member("bob"), member("cy"), member("prof", INSTRUCTOR),
                           member("tim", TA)]
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    sink = GradebookSink(gradebook_url, groups=groups)
    t1 = dt.datetime(2026, 11, 1)
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t1)
    assert report.complete and report.pages == 3 and report.members == 5
    assert groups.groups == {("c1", "student"): {"fake-ann", "fake-bob", "fake-cy"},
                             ("c1", "instructor"): {"fake-prof"}, ("c1", "ta"): {"fake-tim"}}
    with Gradebook(gradebook_url) as gb:
        st = gb.find_student("fake-ann")
        assert (st.first_name, st.last_name, st.email, st.lms_user_id) == ("Ann", "Tester", "ann@uni.example", "ann")
        assert {s.id for s in gb.students} == {"fake-ann", "fake-bob", "fake-cy"}

    # bob drops the course (gone from NRPS), cy is listed as Inactive
    lms.members["ctx1"] = [member("ann"), member("cy", status="Inactive"), member("prof", INSTRUCTOR),
                           member("tim", TA), member("dee")]
    t2 = dt.datetime(2026, 11, 8)
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t2)
    assert sorted(report.left) == ["fake-bob", "fake-cy"] and report.joined == ["fake-dee"]
    rows = roster(sessions)
    assert rows["bob"].status == "left" and rows["bob"].left_at == t2
    assert rows["cy"].status == "left"
    assert rows["ann"].status == "active" and rows["ann"].first_seen == t1 and rows["ann"].last_seen == t2
    with Gradebook(gradebook_url) as gb:  # marked, not deleted
        assert {s.id for s in gb.students} == {"fake-ann", "fake-bob", "fake-cy", "fake-dee"}

    # bob comes back
    lms.members["ctx1"].append(member("bob"))
    report = await sync_roster(sessions, client, svc, sink, Names(), now=dt.datetime(2026, 11, 9))
    assert report.joined == ["fake-bob"] and roster(sessions)["bob"].left_at is None


async def test_looping_pages_stop_and_mark_nobody(sessions, platform, lms, client):
    lms.members["ctx1"] = [member(u) for u in ("a", "b", "c", "d", "e")]
    svc = launch(platform, lms, "prof")
    await sync_roster(sessions, client, svc, Recorder(), Names())
    lms.members["ctx1"] = [member(u) for u in ("a", "b", "c", "d")]  # e left...
    lms.loop_pages = True  # ...but the LMS's last page links back to the first
    report = await sync_roster(sessions, client, svc, Recorder(), Names())
    assert not report.complete and "loop" in report.problem
    assert report.pages == 2
    assert report.left == [] and roster(sessions)["e"].status == "active"
    page_reads = [r for r in lms.requests if r == ("GET", "/ctx/ctx1/memberships")]
    assert len(page_reads) == 3 + 2  # first sync 3 pages, second 2: the loop was not followed


async def test_page_cap(sessions, platform, lms, client):
    lms.members["ctx1"] = [member(f"u{i}") for i in range(20)]
    page = await client.members(launch(platform, lms, "prof"), page_cap=3)
    assert not page.complete and page.pages == 3 and len(page.members) == 6


async def test_next_page_on_another_host_is_refused(sessions, platform, lms, client, http):
    from fakelms import ags

    real_get = ags.MembershipsHandler.get

    def hostile(self, ctx):
        real_get(self, ctx)

    def set_header(self, name, value, _orig=ags.MembershipsHandler.set_header):
        if name == "Link":
            value = '<https://harvest.evil.example/members?page=1>; rel="next"'
        _orig(self, name, value)

    ags.MembershipsHandler.set_header = set_header
    try:
        lms.members["ctx1"] = [member(u) for u in ("a", "b", "c")]
        with pytest.raises(ForeignServiceURL):
            await sync_roster(sessions, client, launch(platform, lms, "prof"), Recorder(), Names())
    finally:
        del ags.MembershipsHandler.set_header
    assert not any("evil" in url for _m, url in http.calls)
    assert roster(sessions) == {}, "nothing recorded from a half-read roster"


MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
OBSERVER = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#Observer"


@pytest.mark.parametrize("observing", [MENTOR, OBSERVER])
async def test_observers_and_mentors_get_no_course_group(sessions, platform, lms, client, gradebook_url, observing):
    lms.members["ctx1"] = [member("ann"), member("prof", INSTRUCTOR), member("tim", TA), member("parent", observing)]
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    report = await sync_roster(sessions, client, svc, GradebookSink(gradebook_url, groups=groups), Names())
    assert report.observers == 1 and report.members == 3
    assert "fake-parent" not in set().union(*groups.groups.values())
    assert "parent" not in roster(sessions)

    # a TA who becomes an observer leaves the course's staff at the next sync
    lms.members["ctx1"] = [member("ann"), member("prof", INSTRUCTOR), member("tim", observing)]
    report = await sync_roster(sessions, client, svc, GradebookSink(gradebook_url, groups=groups), Names())
    assert report.left == ["fake-tim"] and roster(sessions)["tim"].status == "left"


async def test_staff_who_leave_lose_the_group_at_once_students_after_the_grace(sessions, platform, lms, client,
                                                                                gradebook_url):
    lms.members["ctx1"] = [member("ann"), member("bob"), member("prof", INSTRUCTOR), member("tim", TA)]
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    sink = GradebookSink(gradebook_url, groups=groups)
    grace = dt.timedelta(days=7)
    t0 = dt.datetime(2026, 11, 1)
    await sync_roster(sessions, client, svc, sink, Names(), now=t0, grace=grace)
    lms.members["ctx1"] = [member("ann"), member("prof", INSTRUCTOR)]  # bob and the TA leave
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t0 + dt.timedelta(hours=1), grace=grace)
    assert sorted(report.left) == ["fake-bob", "fake-tim"]
    assert report.removed == [("fake-tim", "ta")]
    assert groups.groups[("c1", "ta")] == set() and "fake-bob" in groups.groups[("c1", "student")]
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t0 + dt.timedelta(days=6), grace=grace)
    assert report.removed == [] and "fake-bob" in groups.groups[("c1", "student")]
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t0 + dt.timedelta(days=7, hours=1),
                               grace=grace)
    assert report.removed == [("fake-bob", "student")]
    assert groups.groups[("c1", "student")] == {"fake-ann"}
    assert roster(sessions)["bob"].access_ended_at == t0 + dt.timedelta(days=7, hours=1)
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t0 + dt.timedelta(days=8), grace=grace)
    assert report.removed == []  # once: a later launch (the LMS letting them in) is not fought
    with Gradebook(gradebook_url) as gb:  # their work and gradebook row stay
        assert {s.id for s in gb.students} == {"fake-ann", "fake-bob"}

    lms.members["ctx1"].append(member("bob"))  # re-enrolled
    report = await sync_roster(sessions, client, svc, sink, Names(), now=t0 + dt.timedelta(days=9), grace=grace)
    assert report.joined == ["fake-bob"] and "fake-bob" in groups.groups[("c1", "student")]
    assert roster(sessions)["bob"].access_ended_at is None


async def test_a_role_change_moves_the_group(sessions, platform, lms, client):
    lms.members["ctx1"] = [member("ann"), member("tim", TA)]
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    await sync_roster(sessions, client, svc, groups, Names())
    lms.members["ctx1"] = [member("ann"), member("tim")]  # the TA is a student now
    report = await sync_roster(sessions, client, svc, groups, Names())
    assert report.removed == [("fake-tim", "ta")] and report.left == []
    assert groups.groups[("c1", "ta")] == set() and "fake-tim" in groups.groups[("c1", "student")]


async def test_someone_leaving_while_the_roster_is_paged_costs_nobody_else_their_access(sessions, platform, lms,
                                                                                       client):
    names = ["a", "b", "c", "d", "e"]
    lms.members["ctx1"] = [member(u, TA if u == "c" else LEARNER) for u in names]
    svc = launch(platform, lms, "prof")
    groups = Recorder()
    await sync_roster(sessions, client, svc, groups, Names())

    def a_leaves_after_the_first_page(ctx, page):
        if page == 0:  # a leaves: every later offset shifts by one, so c (a TA) falls between pages
            lms.members[ctx] = [m for m in lms.members[ctx] if m["user_id"] != "a"]
            lms.after_page = None

    lms.after_page = a_leaves_after_the_first_page
    report = await sync_roster(sessions, client, svc, groups, Names())
    assert report.left == [] and report.removed == [], "c, skipped by the shifted pages, is still a TA"
    assert roster(sessions)["c"].status == "active" and "fake-c" in groups.groups[("c1", "ta")]
    report = await sync_roster(sessions, client, svc, groups, Names())  # the next sync sees a is gone
    assert report.left == ["fake-a"] and roster(sessions)["c"].status == "active"
    assert groups.groups[("c1", "student")] == {"fake-a", "fake-b", "fake-d", "fake-e"}  # a: grace period
