"""Shared course data in local user servers: the bubblewrap binds the spawner adds (read-only, at the
dataset's mount path), and a real sandbox in which the data can be read but not written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from coursehub.platform import isolation


def _wrap(tmp_path: Path, data: list[tuple[Path, PurePosixPath]]) -> list[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return isolation.sandbox_command([], home=home, hidden=[tmp_path / "state"], read_only=[], read_write=[],
                                     account=None, data=data)


def test_datasets_are_bound_read_only_below_an_emptied_root(tmp_path):
    census = tmp_path / "census"
    census.mkdir()
    cmd = _wrap(tmp_path, [(census, PurePosixPath("/srv/data/census"))])
    i = cmd.index(str(census))
    assert cmd[i - 1:i + 2] == ["--ro-bind", str(census), "/srv/data/census"]
    assert "--bind" not in [cmd[j - 1] for j, a in enumerate(cmd) if a == "/srv/data/census"]
    assert cmd[cmd.index("/srv") - 1] == "--tmpfs"  # the host's /srv is not shown: the mount point is made
    assert cmd[cmd.index("/srv/data") - 3:cmd.index("/srv/data")] == ["--perms", "0755", "--dir"]
    assert cmd.index("--tmpfs") < i  # the dataset comes after everything it could be hidden by


def test_no_data_changes_nothing(tmp_path):
    assert "/srv" not in _wrap(tmp_path, [])


def test_a_missing_mount_root_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "is_dir", lambda self: str(self) != "/data")
    with pytest.raises(isolation.IsolationError, match="mkdir /data"):
        isolation.data_roots([(tmp_path, PurePosixPath("/data/x"))])


@pytest.mark.skipif(not isolation.bwrap_works(), reason="bubblewrap cannot run here")
def test_student_code_reads_the_dataset_and_cannot_write_it(tmp_path):
    census = tmp_path / "census"
    census.mkdir()
    (census / "values.csv").write_text("a,b\n1,2\n")
    code = ("import os, pathlib\n"
            "d = pathlib.Path('/srv/data/census')\n"
            "print(open(d / 'values.csv').read().splitlines()[1])\n"
            "for act in (lambda: open(d / 'values.csv', 'w'), lambda: open(d / 'new.txt', 'w'),\n"
            "            lambda: os.remove(d / 'values.csv'), lambda: os.chmod(d, 0o777)):\n"
            "    try:\n        act()\n        print('WROTE')\n    except OSError as e:\n        print('refused', e.errno)\n")
    cmd = _wrap(tmp_path, [(census, PurePosixPath("/srv/data/census"))]) + [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "1,2"
    assert "WROTE" not in out.stdout and len(lines) == 5
    assert (census / "values.csv").read_text() == "a,b\n1,2\n" and sorted(p.name for p in census.iterdir()) == ["values.csv"]


def _spawner(tmp_path: Path, mode: str):
    import logging
    from types import SimpleNamespace

    from coursehub.platform.courses import load_course
    from coursehub.platform.profiles import profile_for
    from coursehub.platform.settings import load_settings
    from coursehub.platform.spawner import LocalCourseSpawner

    folder = tmp_path / "courses" / "geo-1"
    (folder / "data" / "census").mkdir(parents=True)
    (folder / "course.yaml").write_text("id: geo-1\ntitle: Geo\ndata:\n  - name: census\n    path: data/census\n")
    settings = load_settings(courses_dir=tmp_path / "courses", state_dir=tmp_path / "state")
    (tmp_path / "state").mkdir()
    sp = LocalCourseSpawner.__new__(LocalCourseSpawner)
    object.__setattr__(sp, "_trait_values", {})
    sp._trait_values.update(course_profiles={"geo-1": profile_for(load_course(folder))},
                            user_options={"course": "geo-1"}, isolation_mode=mode,
                            homes_dir=str(tmp_path / "homes"), home_dir=str(tmp_path / "homes" / "u1"),
                            log=logging.getLogger("test-spawner-data"))
    sp.user = SimpleNamespace(name="u1", groups=[SimpleNamespace(name="course:geo-1:student")])
    sp._settings = lambda: settings
    return sp, (folder / "data" / "census").resolve()


async def test_the_spawner_mounts_the_course_data_in_the_server_sandbox(tmp_path):
    sp, census = _spawner(tmp_path, "sandbox")
    assert sp.course_data() == [(census, PurePosixPath("/srv/data/census"))]
    wrapper = await sp._isolate()
    i = wrapper.index(str(census))
    assert wrapper[i - 1:i + 2] == ["--ro-bind", str(census), "/srv/data/census"]


async def test_without_isolation_the_data_is_not_mounted_and_the_log_says_so(tmp_path, caplog):
    import logging

    sp, _ = _spawner(tmp_path, "none")
    with caplog.at_level(logging.WARNING, logger="test-spawner-data"):
        assert await sp._isolate() == []
    assert "course data (/srv/data/census) is not mounted without isolation" in caplog.text
