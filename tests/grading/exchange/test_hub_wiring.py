"""How the hub wires the grading service: scoped roles (never admin), server tokens that may call
it, and the nbgrader config user servers get (staff see a course directory only for courses they
teach)."""

from __future__ import annotations

from types import SimpleNamespace

from traitlets.config import Config

from coursehub.grading.service.hub import ACCESS_SCOPE, nbgrader_config_text, staff_courses
from coursehub.platform.courses import load_catalog
from coursehub.platform.hubconfig import configure_services
from coursehub.platform.settings import load_settings


def settings_for(tmp_path, courses_dir, **grading):
    s = tmp_path / "s.yaml"
    s.write_text(f"state_dir: {tmp_path / 'state'}\ncourses_dir: {courses_dir}\n")
    settings = load_settings(s)
    for k, v in grading.items():
        setattr(settings.grading, k, v)
    return settings


def test_service_roles_are_scoped_and_users_can_reach_it(tmp_path, courses_dir):
    settings = settings_for(tmp_path, courses_dir)
    c = Config()
    configure_services(c, settings, load_catalog(courses_dir))
    service = next(s for s in c.JupyterHub.services if s["name"] == "grading")
    assert service["command"][-1] == "coursehub.grading.service"
    assert service["url"] == f"http://127.0.0.1:{settings.grading.port}"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    grading_roles = [r for r in c.JupyterHub.load_roles if "grading" in r.get("services", [])]
    assert [r["name"] for r in grading_roles] == ["coursehub-grading"]
    assert not any(s.startswith(("admin", "tokens", "servers", "users")) or s == "access:servers"
                   for s in grading_roles[0]["scopes"])
    assert "self" in roles["user"]["scopes"] and ACCESS_SCOPE in roles["user"]["scopes"]
    assert ACCESS_SCOPE in roles["server"]["scopes"]
    env = c.Spawner.environment
    user = SimpleNamespace(groups=[SimpleNamespace(name=n) for n in
                                   ("course:abc101:ta", "course:xyz202:student", "other")])
    assert env["COURSEHUB_STAFF_COURSES"](SimpleNamespace(user=user)) == "abc101"
    assert staff_courses(SimpleNamespace(user=SimpleNamespace(groups=[]))) == ""


def run_config(text: str, env: dict, monkeypatch, home) -> Config:
    c = Config()
    monkeypatch.setenv("HOME", str(home))
    for k in ("COURSEHUB_COURSE", "COURSEHUB_STAFF_COURSES", "COURSEHUB_GRADING_URL"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": lambda: c})
    return c


def test_nbgrader_config_for_students_and_staff(tmp_path, courses_dir, monkeypatch):
    settings = settings_for(tmp_path, courses_dir)
    shared = tmp_path / "state" / "course-dirs" / "abc101"
    shared.mkdir(parents=True)
    student = run_config(nbgrader_config_text(settings, staff=False), {"COURSEHUB_COURSE": "abc101"},
                         monkeypatch, tmp_path / "home-s")
    assert student.ExchangeFactory.submit == "coursehub.grading.exchange.ExchangeSubmit"
    assert student.CourseDirectory.course_id == "abc101"
    assert "root" not in student.CourseDirectory
    staff_text = nbgrader_config_text(settings, staff=True)
    # A TA of abc101 gets the shared directory, linked into their home.
    ta = run_config(staff_text, {"COURSEHUB_COURSE": "abc101", "COURSEHUB_STAFF_COURSES": "abc101"},
                    monkeypatch, tmp_path / "home-ta")
    assert ta.CourseDirectory.root == str(tmp_path / "home-ta" / "courses" / "abc101")
    assert (tmp_path / "home-ta" / "courses" / "abc101").resolve() == shared.resolve()
    # Staff of another course, started for abc101 (where they are a student): no course directory.
    other = run_config(staff_text, {"COURSEHUB_COURSE": "abc101", "COURSEHUB_STAFF_COURSES": "xyz202"},
                       monkeypatch, tmp_path / "home-o")
    assert "root" not in other.CourseDirectory
    assert not (tmp_path / "home-o" / "courses").exists()
    # Disabled grading: no exchange configuration at all.
    off = settings_for(tmp_path, courses_dir, enabled=False)
    assert "ExchangeFactory" not in nbgrader_config_text(off, staff=True)
