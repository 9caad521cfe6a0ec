"""The settings model: embedded defaults, precise errors, and the bad inputs the issue lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coursehub.cli import main
from coursehub.paths import SOURCE_ROOT
from coursehub.platform.courses import load_catalog, load_course, parse_quantity
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import is_loopback, load_settings

DEMO = SOURCE_ROOT / "courses" / "demo-101"


@pytest.fixture
def courses(tmp_path: Path) -> Path:
    """A writable copy of the repository's courses folder."""
    dest = tmp_path / "courses"
    shutil.copytree(SOURCE_ROOT / "courses", dest)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(Path(p.file).name if p.file else "", p.key) for p in exc.value.problems]


def test_embedded_defaults_are_the_local_platform(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSEHUB_SETTINGS", raising=False)
    s = load_settings(state_dir=tmp_path)
    assert s.mode == "local" and s.spawner.backend == "local" and s.grading.executor == "local"
    assert s.hub_db_url() == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    assert s.grading_db_url().startswith("sqlite:///")
    assert s.hub.ip == "127.0.0.1"


def test_settings_file_relative_paths_and_overrides(tmp_path):
    f = tmp_path / "conf" / "coursehub.yaml"
    f.parent.mkdir()
    f.write_text("state_dir: state\nhub:\n  port: 9000\n")
    s = load_settings(f)
    assert s.state_dir == (f.parent / "state").resolve()
    assert s.hub.port == 9000
    assert load_settings(f, state_dir=tmp_path / "x").state_dir == tmp_path / "x"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("hub:\n  prot: 9000\n", "hub.prot", "unknown key"),
        ("hub:\n  port: nine\n", "hub.port", "integer"),
        ("hub:\n  port: 70000\n", "hub.port", "less than or equal"),
        ("mode: cloud\n", "mode", "'local' or 'kubernetes'"),
        ("auth:\n  sso:\n    enabled: true\n", "auth.sso", "client_id"),
        ("auth:\n  lti:\n    platforms:\n      - name: lms\n        issuer: x\n", "auth.lti.platforms[0].client_ids", "missing"),
    ],
)
def test_settings_errors_name_file_key_and_expectation(tmp_path, text, key, words):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_settings(f)
    found = [p for p in exc.value.problems if p.key == key]
    assert found, exc.value
    assert found[0].file == f
    assert words in found[0].message


def test_duplicate_yaml_keys_are_errors(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("hub:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'port'"):
        load_settings(f)


def test_dev_login_refuses_non_loopback(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("hub:\n  ip: 0.0.0.0\nauth:\n  dev_login: true\n")
    with pytest.raises(ConfigError, match="loopback"):
        load_settings(f)
    f.write_text("hub:\n  ip: 0.0.0.0\nauth:\n  dev_login: false\n")
    assert load_settings(f).hub.ip == "0.0.0.0"


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_addresses(ip):
    assert is_loopback(ip)


@pytest.mark.parametrize("ip", ["0.0.0.0", "10.0.0.1", "::", "example.org", ""])
def test_non_loopback_addresses(ip):
    assert not is_loopback(ip)


def test_demo_course_loads():
    course = load_course(DEMO)
    assert course.id == "demo-101"
    assert [a.id for a in course.assignments] == ["ps1"]
    assert course.textbook_dir().is_dir()
    assert course.group("ta") == "course:demo-101:ta"


def test_course_wrong_type_names_file_and_key(courses):
    f = courses / "demo-101" / "course.yaml"
    edit(f, "enrollment: 300", "enrollment: lots")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "enrollment") in problems(exc)
    assert str(f) in str(exc.value)


@pytest.mark.parametrize(
    "bad_id", ["Demo 101", "../etc", "demo/101", "demo_101", "-demo", "a" * 41, "démo", ""]
)
def test_bad_course_ids(courses, bad_id):
    edit(courses / "demo-101" / "course.yaml", "id: demo-101", f"id: {bad_id!r}")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "id") in problems(exc)


@pytest.mark.parametrize("bad", ["../ps1", "ps 1", "ps1/..", ".hidden", "a/b"])
def test_bad_assignment_ids(courses, bad):
    edit(courses / "demo-101" / "course.yaml", "- id: ps1", f"- id: {bad!r}")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "assignments[0].id") in problems(exc)


def test_course_id_must_match_folder(courses):
    (courses / "demo-101").rename(courses / "other")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "id") in problems(exc)
    assert "folder name 'other'" in str(exc.value)


def test_duplicate_course_ids_and_lti_contexts(courses):
    shutil.copytree(courses / "demo-101", courses / "demo-102")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    text = str(exc.value)
    assert "must match the folder name 'demo-102'" in text
    edit(courses / "demo-102" / "course.yaml", "id: demo-101", "id: demo-102")
    with pytest.raises(ConfigError, match="already claimed by course 'demo-101'"):
        load_catalog(courses)


def test_missing_files_referenced_by_course(courses):
    shutil.rmtree(courses / "demo-101" / "source" / "ps1")
    shutil.rmtree(courses / "demo-101" / "textbook")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert {("course.yaml", "assignments[0].source"), ("course.yaml", "textbook.path")} <= set(problems(exc))


@pytest.mark.parametrize("path", ["/etc", "../other-course/source", "source/../../x"])
def test_paths_must_stay_inside_course(courses, path):
    edit(courses / "demo-101" / "course.yaml", "  path: textbook", f"  path: {path}")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "textbook.path") in problems(exc)


def test_naive_deadline_and_limits_below_guarantees(courses):
    f = courses / "demo-101" / "course.yaml"
    edit(f, "due: 2026-12-18T23:59:00+00:00", "due: 2026-12-18T23:59:00")
    edit(f, "mem_limit: 1Gi", "mem_limit: 100Mi")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    keys = problems(exc)
    assert ("course.yaml", "assignments[0].due") in keys
    assert ("course.yaml", "environment") in keys


def test_unknown_course_key(courses):
    edit(courses / "demo-101" / "course.yaml", "enrollment: 300", "enrollment: 300\nenrolment: 3")
    with pytest.raises(ConfigError) as exc:
        load_catalog(courses)
    assert ("course.yaml", "enrolment") in problems(exc)


def test_quantities():
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("1G") == 10**9
    assert parse_quantity("0.5Gi") == 2**29


def test_cli_validate_reports_file_and_key(courses, capsys):
    assert main(["validate", str(courses)]) == 0
    edit(courses / "demo-101" / "course.yaml", "points: 10", "points: many")
    assert main(["validate", str(courses / "demo-101" / "course.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{courses / 'demo-101' / 'course.yaml'}: assignments[0].points:" in err
    assert "valid number" in err


def test_cli_validate_settings_file(tmp_path, capsys):
    f = tmp_path / "coursehub.yaml"
    f.write_text("grading:\n  workers: 0\n")
    assert main(["validate", str(f)]) == 1
    assert "grading.workers" in capsys.readouterr().err


def test_cli_courses_lists_demo(capsys):
    assert main(["courses"]) == 0
    out = capsys.readouterr().out
    assert "demo-101" in out and "ps1" in out
