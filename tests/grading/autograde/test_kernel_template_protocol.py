"""The kernel template's control protocol (grading/sandbox/template.py), without a sandbox: what it
answers to requests it cannot carry out. Joining a real sandbox is tested in
tests/integration/autograde/test_kernel_template.py."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from coursehub.grading.sandbox import kernel_template


@pytest.fixture
def template():
    t = kernel_template.KernelTemplate(subprocess.Popen)
    t.wait_ready(60)
    yield t
    t.close()


def _line(sock: socket.socket, timeout: float = 30) -> dict:
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "closed without a line"
        data += chunk
    return json.loads(data)


def test_a_request_without_a_channel_is_refused_and_the_template_carries_on(template):
    template.control.sendall(b'{"op": "enter", "pid": 1}\n')
    assert template._reply(30)["op"] == "error"
    template.control.sendall(b'{"op": "something else"}\n')
    assert template._reply(30)["op"] == "error"
    assert template.alive()


def test_a_request_that_arrives_in_pieces_keeps_its_channel(template):
    """The channel travels with the request's first bytes; the rest may come in a later read."""
    ours, theirs = socket.socketpair()
    req = json.dumps({"op": "enter", "pid": 2**22 + 7, "uid": 65534, "cgroup": [], "env": {"PATH": "/usr/bin"},
                      "workspace": "/"}).encode() + b"\n"
    socket.send_fds(template.control, [req[:10]], [theirs.fileno()])
    theirs.close()
    time.sleep(0.2)
    template.control.sendall(req[10:])
    reply = template._reply(30)
    assert reply["op"] == "entered" and reply["status"] != 0  # no such process to join
    error = _line(ours)
    assert error["op"] == "error" and error["stage"] == "set-up" and error["error"].startswith("sandbox join:"), error
    ours.close()
    assert template.alive()


def test_enter_reports_a_join_that_failed(template):
    with pytest.raises(kernel_template.TemplateError, match="could not join"):
        template.enter(2**22 + 9, 65534, [], env={"PATH": "/usr/bin"}, workspace="/")
