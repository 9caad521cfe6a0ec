"""Every registered command loads and explains itself; a mistyped command fails clearly."""

from __future__ import annotations

import pytest

from coursehub.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: coursehub {name}")
    assert COMMANDS[name][1] in " ".join(out.split())


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade-everything"])
    assert exc.value.code == 2
    assert "invalid choice: 'grade-everything'" in capsys.readouterr().err


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"coursehub {version('coursehub')}\n"


def test_importing_coursehub_reads_no_package_metadata():
    """importlib.metadata costs ~60 ms at every coursehub process's start; only --version and the
    places that name the version load it."""
    import subprocess
    import sys

    code = ("import sys, coursehub, coursehub.cli; loaded = 'importlib.metadata' in sys.modules; "
            "v = coursehub.__version__; print(loaded, v == __import__('importlib.metadata').metadata.version('coursehub'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import coursehub

        coursehub.nope  # noqa: B018


def _platform(name: str) -> dict:
    return {"name": name, "issuer": f"https://{name}.example.edu", "client_ids": [f"{name}-client"],
            "auth_login_url": f"https://{name}.example.edu/auth", "token_url": f"https://{name}.example.edu/token",
            "jwks_url": f"https://{name}.example.edu/jwks", "deployment_ids": ["dep-1"]}


def _course(root, lti: list[dict]):  # noqa: ANN001, ANN202
    import yaml

    folder = root / "courses" / "phys-101"
    folder.mkdir(parents=True)
    (folder / "course.yaml").write_text(yaml.safe_dump({"id": "phys-101", "title": "Physics", "lti": lti}))
    return root / "courses"


@pytest.mark.parametrize("platforms, lti, ok", [
    (["canvas", "moodle"], [{"deployment_id": "dep-1", "context_id": "c1"}], False),
    (["canvas", "moodle"], [{"platform": "canvas", "deployment_id": "dep-1", "context_id": "c1"}], True),
    (["canvas"], [{"deployment_id": "dep-1", "context_id": "c1"}], True),
])
def test_validate_requires_platform_when_several_lms_are_registered(tmp_path, capsys, platforms, lti, ok):
    import yaml

    courses = _course(tmp_path, lti)
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "courses_dir": str(courses),
                                        "auth": {"lti": {"platforms": [_platform(p) for p in platforms],
                                                         "local_lms": False}}}))
    rc = main(["validate", "--settings", str(settings)])
    err = capsys.readouterr().err
    assert rc == (0 if ok else 1), err
    assert ("lti[0].platform: required" in err) is not ok
