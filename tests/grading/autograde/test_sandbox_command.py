"""The bubblewrap command line: what the sandbox can and cannot see, and the limits from settings."""

from __future__ import annotations

from pathlib import Path

from coursehub.grading.sandbox import bwrap
from coursehub.grading.sandbox.limits import KernelLimits
from coursehub.platform.settings import SandboxLimits

REPO = Path(__file__).resolve().parents[3]


def _cmd(tmp_path):
    spec = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=61005)
    return bwrap.sandbox_command(spec)


def _binds(cmd):
    out = []
    for i, a in enumerate(cmd):
        if a in ("--bind", "--ro-bind"):
            out.append((a, cmd[i + 1], cmd[i + 2]))
    return out


def test_no_network_and_private_namespaces(tmp_path):
    cmd = _cmd(tmp_path)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                 "--clearenv"):
        assert flag in cmd


def test_only_the_workspace_and_socket_folder_are_writable(tmp_path):
    writable = [(src, dst) for kind, src, dst in _binds(_cmd(tmp_path)) if kind == "--bind"]
    assert writable == [(str(tmp_path / "w"), bwrap.WORKSPACE), (str(tmp_path / "r"), bwrap.RUN_DIR)]


def test_the_checkout_courses_and_state_are_not_visible(tmp_path):
    sources = [src for _, src, _ in _binds(_cmd(tmp_path))]
    for src in sources:
        assert not src.startswith(str(REPO / "courses"))
        assert src != str(REPO) and src != "/"
        assert src in (str(bwrap.ZYGOTE), str(bwrap.NO_COURSEHUB_PTH)) or not src.startswith(str(REPO / "grading"))
    assert str(bwrap.ZYGOTE) in sources  # the zygote file itself, read-only


def test_runs_as_the_slot_uid_without_capabilities(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "privileged", lambda: True)
    cmd = _cmd(tmp_path)
    i = cmd.index(bwrap.SETPRIV)
    assert "--reuid=61005" in cmd[i:] and "--bounding-set=-all" in cmd[i:] and "--no-new-privs" in cmd[i:]
    monkeypatch.setattr(bwrap, "privileged", lambda: False)
    cmd = _cmd(tmp_path)
    assert "--unshare-user" in cmd and bwrap.SETPRIV not in cmd


def test_limits_from_settings():
    limits = KernelLimits.from_settings(SandboxLimits(memory="512Mi", file_size="1Mi", processes=10, cpu_seconds=5))
    assert limits.memory_bytes == 512 * 2**20 and limits.file_size_bytes == 2**20
    assert limits.rlimits() == {"cpu_seconds": 5, "address_space": 512 * 2**20 + 2**30, "processes": 10,
                                "file_size": 2**20, "open_files": 256}


def test_coursehubs_editable_install_is_only_comments_in_the_sandbox(tmp_path, monkeypatch):
    """A checkout's editable install puts coursehub on the path through a `.pth` file whose finder
    every Python start imports; in the sandbox that file holds only comments. Another package's editable
    install (a course's helper library) is left alone, and so is a course environment's runtime."""
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    ours = site / "__editable__.coursehub-0.1.0.pth"
    theirs = site / "__editable__.coursehelpers-1.0.pth"
    for pth in (ours, theirs):
        pth.write_text("import finder; finder.install()\n")
    monkeypatch.setattr(bwrap.sys, "path", [*bwrap.sys.path, str(site)])
    assert ours in bwrap.coursehub_path_files() and theirs not in bwrap.coursehub_path_files()
    spec = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=61005, extra_ro=[site])
    binds = _binds(bwrap.sandbox_command(spec))
    assert ("--ro-bind", str(bwrap.NO_COURSEHUB_PTH), str(ours)) in binds
    assert all(line.startswith("#") for line in bwrap.NO_COURSEHUB_PTH.read_text().splitlines())
    assert not [b for b in binds if b[2] == str(theirs)]
    # bound over the runtime's read-only bind, not under it (a later bind hides an earlier one)
    assert binds.index(("--ro-bind", str(site), str(site))) < binds.index(("--ro-bind", str(bwrap.NO_COURSEHUB_PTH), str(ours)))
    course_env = bwrap.SandboxSpec(workspace=tmp_path / "w", run_dir=tmp_path / "r", uid=61005,
                                   python=Path("/opt/env/bin/python"), runtime=[Path("/opt/env")])
    assert not [b for b in _binds(bwrap.sandbox_command(course_env)) if b[1] == str(bwrap.NO_COURSEHUB_PTH)]
