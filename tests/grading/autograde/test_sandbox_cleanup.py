"""Removing what a submission left: deep trees, long paths, no permissions, symlinks out."""

from __future__ import annotations

import os

import pytest

from coursehub.grading.sandbox.cleanup import Discarder, remove_tree


def _deep(top, levels: int, name: str = "d") -> None:
    fd = os.open(top, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as f:
        f.write("x")
    os.close(fd)


@pytest.mark.parametrize("levels,name", [(1500, "d"), (3000, "n" * 200)])  # the second is far past PATH_MAX
def test_deep_trees_are_removed_without_recursion(tmp_path, levels, name):
    top = tmp_path / "work"
    top.mkdir()
    _deep(top, levels, name)
    remove_tree(top)
    assert not top.exists()
    assert os.listdir(tmp_path) == []


def test_unreadable_folders_and_files_are_removed(tmp_path):
    top = tmp_path / "work"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    os.chmod(top / "a" / "b", 0)
    os.chmod(top / "a", 0)
    remove_tree(top)
    assert not top.exists()


def test_symlinks_are_removed_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    top = tmp_path / "work"
    top.mkdir()
    (top / "link").symlink_to(outside)
    (top / "filelink").symlink_to(outside / "keep")
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep").read_text() == "keep"


def test_discard_takes_the_folder_out_of_use_at_once(tmp_path):
    top = tmp_path / "g1"
    top.mkdir()
    _deep(top, 1500)
    d = Discarder()
    d.discard(top)
    assert not top.exists()  # renamed away immediately; removed in the background
    d.join()
    assert os.listdir(tmp_path) == [] and d.failures == []


def test_folders_of_workers_that_died_are_swept_others_kept(tmp_path):
    import subprocess
    import sys

    from coursehub.grading.sandbox.cleanup import sweep_stale_roots

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, owner in (("coursehub-sandbox-1-dead", dead.pid), ("coursehub-sandbox-2-live", os.getpid()),
                        ("coursehub-sandbox-3-unknown", None), ("unrelated", dead.pid)):
        (tmp_path / name / "g1" / "work").mkdir(parents=True)
        if owner is not None:
            (tmp_path / name / "owner").write_text(f"{owner}\n")
    _deep(tmp_path / "coursehub-sandbox-1-dead" / "g1" / "work", 1500)
    d = Discarder()
    sweep_stale_roots(tmp_path, "coursehub-sandbox-", d)
    d.join()
    assert sorted(os.listdir(tmp_path)) == ["coursehub-sandbox-2-live", "coursehub-sandbox-3-unknown", "unrelated"]
