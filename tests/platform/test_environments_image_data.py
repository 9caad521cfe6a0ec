"""Course images (the repo2docker build folder, offline) and shared read-only course data."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from coursehub.platform import environments as envs
from coursehub.platform.environments_data import course_data, data_mounts, data_problems
from coursehub.platform.environments_image import course_image, image_ref, plan, registry_of
from coursehub.platform.errors import ConfigError
from coursehub.platform.settings import load_settings

LOCK_BODY = "tabulate==0.10.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"


def course(root: Path, yaml_extra: str = "", env: dict[str, str] | None = None) -> Path:
    folder = root / "phys-1"
    folder.mkdir(parents=True)
    (folder / "course.yaml").write_text("id: phys-1\ntitle: Physics\n" + yaml_extra)
    if env is not None:
        (folder / "environment").mkdir()
        for name, text in env.items():
            (folder / "environment" / name).write_text(text)
        spec = envs.load_spec(folder)
        spec.lock_path.write_text(envs.lock_header(spec, envs.server_requirements()) + LOCK_BODY)
    return folder


@pytest.mark.parametrize(("image", "registry"), [
    ("ghcr.io/coursehub/hub:0.1.0", "ghcr.io/coursehub"),
    ("registry.example.edu:5000/courses/hub@sha256:abc", "registry.example.edu:5000/courses"),
    ("hub", ""),
])
def test_registry_of(image, registry):
    assert registry_of(image) == registry


def test_image_is_tagged_by_the_lock(tmp_path):
    folder = course(tmp_path / "courses", env={"requirements.txt": "tabulate\n"})
    lock = envs.read_lock(folder / "environment" / "requirements.lock")
    assert image_ref("phys-1", lock, "registry.example.edu/courses") == \
        f"registry.example.edu/courses/coursehub-phys-1:{lock.sha256[:12]}"
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    assert course_image(settings, "phys-1") == f"ghcr.io/coursehub/coursehub-phys-1:{lock.short}"
    (tmp_path / "courses" / "other").mkdir()
    assert course_image(settings, "other") is None


def test_build_folder_without_repo2docker(tmp_path):
    folder = course(tmp_path, env={"requirements.txt": "tabulate\n", "runtime.txt": "python-3.11\n",
                                   "apt.txt": "graphviz\n", "postBuild": "#!/bin/sh\necho hi\n"})
    spec = envs.load_spec(folder)
    result = plan(spec, tmp_path / "out", "reg.example/c", coursehub_spec="coursehub==0.1.0", use_repo2docker=False)
    ctx = tmp_path / "out" / "context"
    assert (ctx / "requirements.txt").read_bytes() == spec.lock_path.read_bytes()  # builds use only the lock
    assert (ctx / "runtime.txt").read_text() == "python-3.11\n"
    assert (ctx / "apt.txt").read_text() == "graphviz\n"
    post = (ctx / "postBuild").read_text()
    assert "pip install --no-cache-dir --no-deps coursehub==0.1.0" in post and post.endswith("./postBuild.course\n")
    assert not (ctx / "Dockerfile").exists()  # repo2docker would switch to its Dockerfile buildpack
    dockerfile = result.dockerfile.read_text()
    assert result.dockerfile_source == "minimal"
    assert "FROM docker.io/library/python:3.11-slim-bookworm" in dockerfile
    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in dockerfile and "graphviz" in dockerfile
    assert result.image.startswith("reg.example/c/coursehub-phys-1:")
    assert result.build_command[-3:] == ["--image-name", result.image, str(ctx)]
    assert json.loads((tmp_path / "out" / "image.json").read_text())["image"] == result.image
    assert f"docker build -t {result.image}" in (tmp_path / "out" / "build.sh").read_text()
    assert "coursehub env image phys-1" in (tmp_path / "out" / "ci-example.yml").read_text()


DATA = """data:
  - name: census
    path: data/census
  - name: era5
    volume: {claim: era5-readonly}
    mount: /srv/data/climate
"""


def test_data_mounts(tmp_path):
    folder = course(tmp_path, DATA)
    (folder / "data" / "census").mkdir(parents=True)
    assert [d.name for d in course_data(folder)] == ["census", "era5"]
    assert data_problems(folder) == []
    assert data_mounts(folder) == [((folder / "data" / "census").resolve(), PurePosixPath("/srv/data/census"))]


def test_data_problems(tmp_path):
    folder = course(tmp_path, """data:
  - name: census
    path: data/census
  - name: both
    path: x
    volume: {claim: c}
  - name: sys
    volume: {claim: c}
    mount: /usr/lib/data
  - name: census
    volume: {claim: c}
    mount: /srv/data/census/sub
""")
    with pytest.raises(ConfigError) as exc:
        course_data(folder)
    keys = [p.key for p in exc.value.problems]
    assert keys == ["data[1]", "data[2].mount"]
    assert "exactly one of 'path'" in str(exc.value) and "below /srv, /mnt, /data" in str(exc.value)
    (folder / "course.yaml").write_text("id: phys-1\ntitle: P\n" + DATA + "  - name: census\n    volume: {claim: c}\n"
                                        "    mount: /srv/data/census/sub\n")
    found = {(p.key, p.message.split(":")[0]) for p in data_problems(folder)}
    assert ("data[0].path", "folder 'data/census' not found in the course folder") in found
    assert ("data[2].name", "dataset name 'census' appears twice") in found
    assert ("data[2].mount", "/srv/data/census/sub overlaps another dataset's mount") in found


def test_data_cannot_leave_the_course(tmp_path):
    folder = course(tmp_path, "data:\n  - name: secrets\n    path: data/link\n")
    (folder / "data").mkdir()
    (folder / "data" / "link").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="leaves the course folder"):
        data_mounts(folder)
    (folder / "course.yaml").write_text("id: phys-1\ntitle: P\ndata:\n  - name: up\n    path: ../x\n")
    with pytest.raises(ConfigError, match=r"data\[0\]\.path.*inside the course folder"):
        course_data(folder)


def test_course_model_holds_and_checks_data(tmp_path):
    from coursehub.platform.courses import load_course

    folder = course(tmp_path, DATA)
    with pytest.raises(ConfigError) as exc:  # the catalog refuses a dataset folder that is missing
        load_course(folder)
    assert [p.key for p in exc.value.problems] == ["data[0].path"]
    (folder / "data" / "census").mkdir(parents=True)
    loaded = load_course(folder)
    assert [(d.name, str(d.mount_path)) for d in loaded.data] == [("census", "/srv/data/census"),
                                                                  ("era5", "/srv/data/climate")]
    assert loaded.data[1].volume.claim == "era5-readonly"
    (folder / "course.yaml").write_text("id: phys-1\ntitle: P\ndata:\n  - name: Bad Name\n    path: x\n")
    with pytest.raises(ConfigError, match=r"data\.0\.name|data\[0\]\.name"):
        load_course(folder)


def test_validate_reports_data_problems(tmp_path, capsys):
    from coursehub.cli import main

    folder = course(tmp_path, "data:\n  - name: census\n    path: data/missing\n")
    assert main(["validate", str(folder)]) == 1
    assert "data[0].path: folder 'data/missing' not found" in capsys.readouterr().err
