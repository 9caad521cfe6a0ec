"""Course environment specs: validation with file and line, lock staleness, env names, where the
built python is, uv's errors turned into the package at fault. No network: uv is not called."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coursehub.cli import main
from coursehub.paths import SOURCE_ROOT
from coursehub.platform import environments as envs
from coursehub.platform.environments_build import _blame, culprit, pinned_packages
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import load_settings

LOCK_BODY = "tabulate==0.10.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via -r requirements.txt\n"


def make_course(root: Path, course_id: str = "phys-1", files: dict[str, str] | None = None) -> Path:
    folder = root / course_id
    folder.mkdir(parents=True)
    (folder / "course.yaml").write_text(f"id: {course_id}\ntitle: Physics\n")
    if files is not None:
        (folder / "environment").mkdir()
        for name, text in files.items():
            (folder / "environment" / name).write_text(text)
    return folder


def write_lock(folder: Path, body: str = LOCK_BODY) -> envs.LockInfo:
    spec = envs.load_spec(folder)
    spec.lock_path.write_text(envs.lock_header(spec, envs.server_requirements()) + body)
    return envs.read_lock(spec.lock_path)


def problem_keys(exc: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(Path(p.file).name, p.key) for p in exc.value.problems]


def test_no_environment_folder_means_default_environment(tmp_path):
    folder = make_course(tmp_path)
    assert envs.load_spec(folder) is None
    assert envs.check_course(folder) == ([], [])
    settings = load_settings(courses_dir=tmp_path, state_dir=tmp_path / "state")
    assert envs.course_python(settings, "phys-1") is None


def test_valid_spec(tmp_path):
    folder = make_course(tmp_path, files={
        "requirements.txt": "# comment\nsympy>=1.12  # symbolic\nastropy \\\n  >=6\ndatascience @ https://example.org/ds.whl\n",
        "runtime.txt": "python-3.12\n",
    })
    spec = envs.load_spec(folder)
    assert spec.python == "3.12"
    assert spec.requirements[:2] == ("sympy>=1.12", "astropy>=6")
    assert spec.requirements[2] == "datascience @ https://example.org/ds.whl"
    assert set(spec.digests()) == {"requirements.txt", "runtime.txt"}


def test_spec_without_runtime_uses_the_hubs_python(tmp_path):
    spec = envs.load_spec(make_course(tmp_path, files={"requirements.txt": "tabulate\n"}))
    assert spec.python == envs.hub_python()


def test_requirement_errors_name_file_and_line(tmp_path):
    folder = make_course(tmp_path, files={"requirements.txt": (
        "numpy\n"
        "-r other.txt\n"
        "pandas>>2\n"
        "NumPy==2.0\n"
        "local @ file:///home/me/pkg\n"
        "-e .\n"
    )})
    with pytest.raises(ConfigError) as exc:
        envs.load_spec(folder)
    keys = problem_keys(exc)
    assert keys == [("requirements.txt", f"line {n}") for n in (2, 3, 4, 5, 6)]
    text = str(exc.value)
    assert "'-r': pip options, includes and editable installs are not supported" in text
    assert "not a package requirement (expected e.g. 'numpy>=1.26')" in text
    assert "NumPy is already listed on line 1" in text
    assert "only https:// URLs can be locked" in text


@pytest.mark.parametrize(("runtime", "message"), [
    ("python-3\n", "expected one line 'python-3.X'"),
    ("r-4.3-2023-10-01\n", "expected one line 'python-3.X'"),
    ("", "got 'an empty file'"),
    ("python-3.8\n", "too old"),
])
def test_runtime_errors(tmp_path, runtime, message):
    folder = make_course(tmp_path, files={"requirements.txt": "tabulate\n", "runtime.txt": runtime})
    with pytest.raises(ConfigError) as exc:
        envs.load_spec(folder)
    assert problem_keys(exc)[0][0] == "runtime.txt"
    assert message in str(exc.value)


def test_missing_requirements_and_unsupported_files(tmp_path):
    folder = make_course(tmp_path, files={"environment.yml": "dependencies: [numpy]\n", "Dockerfile": "FROM x\n"})
    with pytest.raises(ConfigError) as exc:
        envs.load_spec(folder)
    text = str(exc.value)
    assert "environment.yml: (top level): not supported by coursehub: conda environments" in text
    assert "Dockerfile: (top level): not supported by coursehub" in text
    assert "requirements.txt: (top level): file not found" in text


def test_image_only_files_warn_and_bad_apt_names_fail(tmp_path):
    folder = make_course(tmp_path, files={"requirements.txt": "tabulate\n", "apt.txt": "graphviz\nlibgl1 Bad_Name\n",
                                          "postBuild": "#!/bin/sh\n", "requirement.txt": "typo\n"})
    with pytest.raises(ConfigError) as exc:
        envs.load_spec(folder)
    assert problem_keys(exc) == [("apt.txt", "line 2")]
    (folder / "environment" / "apt.txt").write_text("graphviz\n")
    spec = envs.load_spec(folder)
    joined = "\n".join(spec.warnings)
    assert "apt.txt: OS packages are installed in the image only" in joined
    assert "postBuild: runs in the image build only" in joined
    assert "requirement.txt: not an environment file coursehub reads" in joined


def test_lock_missing_fresh_and_stale(tmp_path):
    folder = make_course(tmp_path, files={"requirements.txt": "tabulate\n"})
    problems, _ = envs.check_course(folder)
    assert [str(p) for p in problems] == [f"{folder / 'environment' / 'requirements.lock'}: lock: no lock yet: "
                                          "run `coursehub env lock phys-1`"]
    write_lock(folder)
    assert envs.check_course(folder) == ([], [])
    (folder / "environment" / "requirements.txt").write_text("tabulate\nsympy\n")
    (folder / "environment" / "runtime.txt").write_text(f"python-{envs.hub_python()}\n")
    problems, _ = envs.check_course(folder)
    assert len(problems) == 1
    assert "older than the spec: requirements.txt (changed), runtime.txt (added) since locking" in problems[0].message


def test_lock_made_for_another_hub_warns(tmp_path):
    folder = make_course(tmp_path, files={"requirements.txt": "tabulate\n"})
    lock = write_lock(folder)
    text = lock.path.read_text()
    ours = next(r for r in envs.server_requirements() if r.startswith("jupyterhub=="))
    lock.path.write_text(text.replace(ours, "jupyterhub==5.5.0"))
    problems, warnings = envs.check_course(folder)
    assert problems == []
    assert "made for another coursehub (jupyterhub==5.5.0" in warnings[0]


def test_server_requirements_pin_the_hubs_jupyter_stack():
    from importlib.metadata import version

    reqs = envs.server_requirements()
    for name in ("jupyterhub", "jupyterlab", "nbgrader", "ipykernel"):
        assert f"{name}=={version(name)}" in reqs


def test_env_name_follows_the_lock_hash(tmp_path):
    folder = make_course(tmp_path, files={"requirements.txt": "tabulate\n"})
    first = write_lock(folder)
    assert envs.env_name("phys-1", first) == f"phys-1-{first.sha256[:12]}"
    assert envs.env_dir(tmp_path / "state", "phys-1", first) == tmp_path / "state" / "envs" / f"phys-1-{first.short}"
    assert write_lock(folder).sha256 == first.sha256  # same lock, same environment
    second = write_lock(folder, LOCK_BODY.replace("0.10.0", "0.9.0"))
    assert second.short != first.short
    assert pinned_packages(second.path) == ["tabulate==0.9.0"]


def test_course_python_needs_a_built_environment(tmp_path):
    courses = tmp_path / "courses"
    folder = make_course(courses, files={"requirements.txt": "tabulate\n"})
    settings = load_settings(courses_dir=courses, state_dir=tmp_path / "state")
    with pytest.raises(envs.EnvironmentNotBuilt, match="no lock: run `coursehub env lock phys-1`"):
        envs.course_python(settings, "phys-1")
    lock = write_lock(folder)
    with pytest.raises(envs.EnvironmentNotBuilt, match="run `coursehub env build phys-1`"):
        envs.course_python(settings, "phys-1")
    built = envs.env_dir(settings.state_dir, "phys-1", lock)
    (built / "bin").mkdir(parents=True)
    (built / "bin" / "python").write_text("")
    with pytest.raises(envs.EnvironmentNotBuilt):  # no marker: a half-finished build is never used
        envs.course_python(settings, "phys-1")
    (built / envs.MARKER_FILE).write_text("{}")
    assert envs.course_python(settings, "phys-1") == built / "bin" / "python"


def test_runtime_paths_include_the_base_interpreter(tmp_path):
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.11.2\n")
    assert envs.runtime_paths(env / "bin" / "python") == [env, Path("/usr")]


UV_NOT_FOUND = """Using Python 3.11.7 environment at: x
error: No solution found when resolving dependencies
  cause: Because no-such-pkg was not found in the package registry and you require no-such-pkg==1.0, we can \
conclude that your requirements are unsatisfiable."""


@pytest.mark.parametrize(("output", "package"), [
    (UV_NOT_FOUND, "no-such-pkg"),
    ("error: No solution found\n  cause: Because there is no version of tabulate==99.0 and you require "
     "tabulate==99.0, we can conclude that your requirements are unsatisfiable.", "tabulate"),
    ("DEBUG x\nerror: Failed to download `tabulate==0.10.0`\n  cause: Hash mismatch for `tabulate==0.10.0`", "tabulate"),
    ("error: Failed to build `pycairo==1.26.0`\n  cause: The build backend returned an error", "pycairo"),
    ("error: something else entirely", None),
])
def test_uv_errors_name_the_package(output, package):
    assert culprit(output) == package


def test_build_error_points_at_the_lock_line(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nno-such-pkg==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    err = _blame(lock, "DEBUG noise\n" + UV_NOT_FOUND, "building phys-1's environment")
    assert err.package == "no-such-pkg"
    assert str(err).startswith(f"building phys-1's environment failed at package 'no-such-pkg' ({lock}, line 2):")
    assert "DEBUG" not in str(err)


def test_validate_reports_a_stale_lock(tmp_path, capsys):
    courses = tmp_path / "courses"
    shutil.copytree(SOURCE_ROOT / "courses", courses)
    assert main(["validate", str(courses)]) == 0
    req = courses / "demo-101" / "environment" / "requirements.txt"
    req.write_text(req.read_text() + "tabulate\n")
    assert main(["validate", str(courses / "demo-101")]) == 1
    err = capsys.readouterr().err
    assert f"{courses / 'demo-101' / 'environment' / 'requirements.lock'}: lock: older than the spec: " \
           "requirements.txt (changed) since locking; run `coursehub env lock demo-101`" in err


def test_demo_course_lock_is_current():
    problems, _ = envs.check_course(SOURCE_ROOT / "courses" / "demo-101")
    assert problems == []
