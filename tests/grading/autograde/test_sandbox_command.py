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
        assert src == str(bwrap.ZYGOTE) or not src.startswith(str(REPO / "grading"))
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
