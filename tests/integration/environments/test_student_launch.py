"""A student's server of a course with its own environment runs in it (issue 15): the real hub
spawns the server from the course's built environment, and a kernel started through the server's
REST API imports the course's package and reports the environment's prefix and lock."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import requests
from support.course_env import ENV_COURSE, ENV_EXTRA
from support.hub import running_hub
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from coursehub.platform import environments as envs


async def _execute(server_url: str, token: str, code: str, timeout: float = 120) -> str:
    """Run `code` in a new kernel of the server (Jupyter's kernel REST and websocket API); its stdout."""
    auth = {"Authorization": f"token {token}"}
    r = requests.post(f"{server_url}api/kernels", json={"name": "python3"}, headers=auth, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    conn = await websocket_connect(HTTPRequest(f"{server_url.replace('http', 'ws', 1)}api/kernels/{kernel}/channels",
                                               headers=auth))
    msg_id = uuid.uuid4().hex
    await conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "session": uuid.uuid4().hex,
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out: list[str] = []

    async def read() -> None:
        while True:
            msg = json.loads(await conn.read_message())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        conn.close()
        requests.delete(f"{server_url}api/kernels/{kernel}", headers=auth, timeout=30)
    return "".join(out)


def test_a_student_server_runs_in_the_course_environment(built_course_env, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "envs").symlink_to(built_course_env.state_dir / "envs")  # the session's build, not a new one
    settings = {"courses_dir": str(built_course_env.courses_dir), "state_dir": str(state)}
    lock = envs.read_lock(built_course_env.folder / "environment" / envs.LOCK_FILE)
    with running_hub(tmp_path, settings=settings) as hub:
        hub.login("stud")
        url = hub.start_server("stud", course=ENV_COURSE)
        out = asyncio.run(_execute(url, hub.user_token("stud"), (
            f"import sys, {ENV_EXTRA}\n"
            "from coursehub.platform.environments import running_environment\n"
            f"print(sys.prefix); print({ENV_EXTRA}.toRoman(14)); print(running_environment())\n")))
        hub.stop_server("stud")
    prefix, numeral, environment = out.split()
    assert Path(prefix).resolve() == built_course_env.env.resolve()
    assert numeral == "XIV"  # the course's package, which coursehub's own environment lacks
    assert environment == lock.sha256  # what this server's submissions report for the parity check

