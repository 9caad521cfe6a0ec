"""Attacks from a student's real server on the local platform in `users` isolation (hub as root).

A student's code, run in the kernel of their own JupyterLab server (and again as their system
account outside any sandbox), tries to read another student's home, the gradebook and course
folder, the cookie secret, the LTI tool key, the hub and grading databases and the submission store,
and to see the hub's processes. Every attempt must fail, while their own home works.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from support.accounts import random_prefix, remove_accounts
from support.hub import running_hub
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from coursehub.platform import isolation
from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path

pytestmark = [
    pytest.mark.hubcompat,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd") or not isolation.bwrap_works(),
                       reason="users isolation needs root, useradd and bubblewrap"),
]

PROBE = r"""
import json, os
targets = json.loads(%r)
out = {"uid": os.getuid(), "home": sorted(os.listdir(os.path.expanduser("~")))}
for name, path in targets.items():
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        out[name] = "READ"
    except OSError as e:
        out[name] = type(e).__name__
print("PROBE" + json.dumps(out))
"""


@pytest.fixture
def prefix(monkeypatch):
    """A test-only account prefix; every account and group made with it is removed afterwards."""
    p = random_prefix()
    monkeypatch.setenv(isolation.PREFIX_ENV, p)
    monkeypatch.setenv(isolation.MODE_ENV, "users")
    yield p
    remove_accounts(p)


async def _execute(server_url: str, token: str, code: str, timeout: float = 90) -> str:
    headers = {"Authorization": f"token {token}"}
    r = requests.post(f"{server_url}api/kernels", headers=headers, json={"name": "python3"}, timeout=60)
    r.raise_for_status()
    kernel = r.json()["id"]
    ws_url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                   "username": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), timeout)
        if raw is None:
            raise AssertionError("kernel websocket closed")
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            out.append("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            ws.close()
            return "".join(out)


def run_in_kernel(server_url: str, token: str, code: str) -> str:
    return asyncio.run(_execute(server_url, token, code))


def probe_result(text: str) -> dict:
    line = next((ln for ln in text.splitlines() if ln.startswith("PROBE")), None)
    assert line, f"probe did not run:\n{text}"
    return json.loads(line[len("PROBE"):])


def test_student_code_cannot_read_other_homes_or_the_hubs_secrets(tmp_path, prefix):
    with running_hub(tmp_path) as hub:
        state = hub.state_dir
        hub.login("alice")
        hub.login("bob")
        alice_url = hub.start_server("alice", course="demo-101")
        hub.start_server("bob", course="demo-101")
        bob = pwd.getpwnam(isolation.unix_name("bob", prefix))
        alice = pwd.getpwnam(isolation.unix_name("alice", prefix))
        assert alice.pw_uid != bob.pw_uid and 0 not in (alice.pw_uid, bob.pw_uid)
        bob_home = state / "homes" / "bob"
        assert bob_home.stat().st_uid == bob.pw_uid and bob_home.stat().st_mode & 0o777 == 0o700
        (bob_home / "answers.ipynb").write_text("{}")
        os.chown(bob_home / "answers.ipynb", bob.pw_uid, bob.pw_gid)

        course_dir = state / "course-dirs" / "demo-101"
        course_dir.mkdir(parents=True, exist_ok=True)
        (course_dir / "gradebook.db").write_bytes(b"x")
        load_or_create_key_pair(tool_key_path(state))
        targets = {
            "other_home": str(bob_home),
            "other_file": str(bob_home / "answers.ipynb"),
            "homes": str(state / "homes"),
            "state": str(state),
            "cookie_secret": str(state / "jupyterhub_cookie_secret"),
            "tool_key": str(state / "lti" / "tool-key.pem"),
            "hub_db": str(state / "jupyterhub.sqlite"),
            "grading_db": str(state / "grading.sqlite"),
            "store": str(state / "exchange"),
            "course_dir": str(course_dir),
            "gradebook": str(course_dir / "gradebook.db"),
            "courses_source": str(Path(hub.settings["courses_dir"]) / "demo-101"),
            "hub_environ": f"/proc/{hub.proc.pid}/environ",
            "settings": str(hub.settings_file),
        }
        for name, path in targets.items():  # each target is real: the test can fail
            assert Path(path).exists(), name

        token = hub.user_token("alice")
        result = probe_result(run_in_kernel(alice_url, token, PROBE % json.dumps(targets)))
        assert result["uid"] == alice.pw_uid
        leaked = {k: v for k, v in result.items() if v == "READ"}
        assert not leaked, f"a student's kernel could read: {leaked}"

        # Own home works: a file written by the kernel lands in alice's home, owned by her account.
        run_in_kernel(alice_url, token, "open('mine.txt','w').write('ok')")
        mine = state / "homes" / "alice" / "mine.txt"
        assert mine.read_text() == "ok" and mine.stat().st_uid == alice.pw_uid

        # Outside any sandbox, the same account still reads none of it (the state folder is root's).
        for name, path in targets.items():
            if name == "hub_environ":
                continue
            r = subprocess.run(["setpriv", f"--reuid={alice.pw_uid}", f"--regid={alice.pw_gid}", "--clear-groups",
                                "cat", path], capture_output=True)
            assert r.returncode != 0, f"alice's account can read {name} outside the sandbox"
        hub.stop_server("alice")
        hub.stop_server("bob")


def test_staff_reach_their_course_folder_and_students_do_not(tmp_path, prefix):
    with running_hub(tmp_path) as hub:
        group = "course:demo-101:instructor"
        hub.api("POST", f"/groups/{group}")
        hub.login("ivy")
        hub.api("POST", f"/groups/{group}/users", json={"users": ["ivy"]}).raise_for_status()
        course_dir = hub.state_dir / "course-dirs" / "demo-101"
        course_dir.mkdir(parents=True, exist_ok=True)
        (course_dir / "gradebook.db").write_bytes(b"grades")
        url = hub.start_server("ivy", course="demo-101")
        code = (f"p={str(course_dir)!r}\nopen(p+'/gradebook.db','rb').read()\n"
                "open(p+'/new.txt','w').write('x')\nprint('PROBE'+__import__('json').dumps({'ok': 1}))")
        assert probe_result(run_in_kernel(url, hub.user_token("ivy"), code)) == {"ok": 1}
        ivy = pwd.getpwnam(isolation.unix_name("ivy", prefix))
        assert (course_dir / "new.txt").stat().st_uid == ivy.pw_uid
        hub.stop_server("ivy")
