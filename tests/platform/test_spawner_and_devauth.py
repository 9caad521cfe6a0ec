"""Course selection in the spawner, home folder names, and the development login's guard."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_course
from coursehub.platform.devauth import DevLoginAuthenticator
from coursehub.platform.profiles import courses_of, profile_for
from coursehub.platform.spawner import LocalCourseSpawner, apply_course_option, safe_dirname

DEMO = profile_for(load_course(SOURCE_ROOT / "courses" / "demo-101"))


def spawner_for(groups: list[str], options: dict | None = None) -> LocalCourseSpawner:
    user = SimpleNamespace(name="u1", groups=[SimpleNamespace(name=g) for g in groups])
    sp = LocalCourseSpawner.__new__(LocalCourseSpawner)  # no hub objects needed for these methods
    object.__setattr__(sp, "_trait_values", {})
    sp._trait_values.update(course_profiles={"demo-101": DEMO}, user_options=options or {})
    sp.user = user
    return sp


@pytest.mark.parametrize(
    ("name", "expected"),
    [("alice", "alice"), ("../../etc", "_.._etc"), ("a/b", "a_b"), (".hidden", "hidden"), ("", "_"),
     ("lti-4f2a", "lti-4f2a")],
)
def test_safe_dirname(name, expected):
    assert safe_dirname(name) == expected
    assert "/" not in safe_dirname(name)


def test_profile_from_course():
    assert DEMO.mem_limit == 2**30 and DEMO.cpu_limit == 1
    assert DEMO.env["COURSEHUB_COURSE"] == "demo-101"
    assert "course:demo-101:student" in DEMO.groups


def test_courses_of_groups():
    assert courses_of(["course:a:student", "course:b:ta", "course:b:instructor", "other", "course:x:admin"]) == {
        "a": {"student"}, "b": {"ta", "instructor"}}


def test_selected_course_requires_membership():
    sp = spawner_for(["course:demo-101:student"], {"course": "demo-101"})
    assert sp.selected_course() is DEMO
    with pytest.raises(ValueError, match="not enrolled"):
        spawner_for(["course:other:student"], {"course": "demo-101"}).selected_course()
    with pytest.raises(ValueError, match="not enrolled"):
        spawner_for(["course:demo-101:student"], {"course": "nope"}).selected_course()
    # one course and no choice: that course; no course: no profile
    assert spawner_for(["course:demo-101:ta"]).selected_course() is DEMO
    assert spawner_for([]).selected_course() is None


def test_apply_user_options_rejects_unknown_keys():
    sp = spawner_for(["course:demo-101:student"])
    with pytest.raises(ValueError, match="Unknown server options: image"):
        apply_course_option(sp, {"image": "evil:latest"})
    apply_course_option(sp, {"course": "demo-101"})


def test_staff_detection():
    assert spawner_for(["course:demo-101:ta"]).staff_anywhere()
    assert not spawner_for(["course:demo-101:student"]).staff_anywhere()


async def test_dev_login_refuses_outside_loopback():
    auth = DevLoginAuthenticator(hub_ip="0.0.0.0", course_staff={"demo-101": {"instructors": ["ines"]}})
    with pytest.raises(RuntimeError, match="loopback"):
        await auth.authenticate(None, {"username": "alice"})


async def test_dev_login_roles_and_name_rules():
    auth = DevLoginAuthenticator(
        hub_ip="127.0.0.1",
        course_staff={"demo-101": {"instructors": ["ines"], "teaching_assistants": ["tom"]}, "b": {}},
    )
    assert (await auth.authenticate(None, {"username": "ines"}))["groups"] == [
        "course:b:student", "course:demo-101:instructor"]
    assert "course:demo-101:ta" in (await auth.authenticate(None, {"username": "Tom"}))["groups"]
    for bad in ["", "../x", "a b", "x" * 80]:
        assert await auth.authenticate(None, {"username": bad}) is None


def test_isolation_comes_from_up_and_defaults_to_none(monkeypatch):
    monkeypatch.delenv("COURSEHUB_USER_ISOLATION", raising=False)
    assert LocalCourseSpawner(homes_dir="/h").isolation_mode == "none"
    monkeypatch.setenv("COURSEHUB_USER_ISOLATION", "users")
    assert LocalCourseSpawner(homes_dir="/h").isolation_mode == "users"
    monkeypatch.setenv("COURSEHUB_USER_ISOLATION", "bogus")  # never a mode nobody chose
    assert LocalCourseSpawner(homes_dir="/h").isolation_mode == "none"


def test_only_course_staff_get_their_course_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEHUB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("COURSEHUB_SETTINGS", raising=False)
    assert spawner_for(["course:demo-101:ta", "course:x:student"]).taught_course_dirs() == {
        "demo-101": tmp_path / "course-dirs" / "demo-101"}
    assert spawner_for(["course:demo-101:student"]).taught_course_dirs() == {}


async def test_a_built_course_environment_runs_the_server_and_its_kernels(monkeypatch, tmp_path):
    """The course's `coursehub env build` environment: its jupyterhub-singleuser, first on PATH."""
    from jupyterhub.spawner import SimpleLocalProcessSpawner

    env_bin = tmp_path / "envs" / "demo-101-abc" / "bin"
    env_bin.mkdir(parents=True)
    sp = spawner_for(["course:demo-101:student"], {"course": "demo-101"})
    sp._trait_values.update(cmd=["/platform/bin/jupyterhub-singleuser", "--debug"], isolation_mode="none",
                            role_config_root="", homes_dir=str(tmp_path / "homes"))
    monkeypatch.setattr(LocalCourseSpawner, "course_environment", lambda self, course: env_bin / "python")
    seen = {}

    async def fake_start(self):  # noqa: ANN001, ANN202
        seen["cmd"] = list(self.cmd)
        return ("127.0.0.1", 1)

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", fake_start)
    monkeypatch.setattr(SimpleLocalProcessSpawner, "get_env", lambda self: {"PATH": "/usr/bin"})
    await sp.start()
    assert seen["cmd"] == [str(env_bin / "jupyterhub-singleuser"), "--debug"]
    assert sp.cmd == ["/platform/bin/jupyterhub-singleuser", "--debug"]  # the next start decides again
    env = sp.get_env()
    assert env["PATH"].split(":")[0] == str(env_bin) and env["VIRTUAL_ENV"] == str(env_bin.parent)

    # no built environment: the platform's, unchanged
    monkeypatch.setattr(LocalCourseSpawner, "course_environment", lambda self, course: None)
    await sp.start()
    assert seen["cmd"] == ["/platform/bin/jupyterhub-singleuser", "--debug"]
    assert "VIRTUAL_ENV" not in sp.get_env()


def test_an_unbuilt_environment_falls_back_with_the_command_to_run(monkeypatch, tmp_path, caplog):
    from coursehub.platform import environments

    def not_built(settings, course):  # noqa: ANN001, ANN202
        raise environments.EnvironmentNotBuilt("run `coursehub env build demo-101`")

    monkeypatch.setattr(environments, "course_python", not_built)
    sp = spawner_for(["course:demo-101:student"], {"course": "demo-101"})
    monkeypatch.setattr(LocalCourseSpawner, "_settings", lambda self: None)
    import logging

    sp._trait_values["log"] = logging.getLogger("test-spawner")
    with caplog.at_level(logging.WARNING, logger="test-spawner"):
        assert sp.course_environment("demo-101") is None
    assert "coursehub env build demo-101" in caplog.text
