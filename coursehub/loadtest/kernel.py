"""A usable notebook means a kernel that answers: get the opened notebook's session (its kernel) from
the user server's REST API, as JupyterLab does, and run `1+1` over the kernel's websocket, with the
browser's cookies (no jupyter_client)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid

import requests

from .hubclient import StepFailed, cookie


def run_one_plus_one(http: requests.Session, server_url: str, deadline: float, notebook: str | None = None) -> None:
    """Get a kernel in the server at `server_url` (…/user/<name>/) as JupyterLab does, run `1+1`,
    expect `2`, and shut it down again (not waited for). With `notebook` (the path Lab opened), the
    notebook's session: the one the hub pre-started if it is there or still starting, else a new
    one; without, a new kernel."""
    path = "/" + server_url.split("/", 3)[3]
    headers = {"X-XSRFToken": cookie(http, "_xsrf", path) or ""}
    if notebook:
        r = http.post(f"{server_url}api/sessions", headers=headers, timeout=_left(deadline),
                      json={"path": notebook, "name": notebook.rsplit("/", 1)[-1], "type": "notebook"})
    else:
        r = http.post(f"{server_url}api/kernels", json={}, headers=headers, timeout=_left(deadline))
    if r.status_code != 201:
        raise StepFailed(f"kernel start: HTTP {r.status_code}")
    kernel_id = r.json()["kernel"]["id"] if notebook else r.json()["id"]
    cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies if path.startswith(c.path.rstrip("/") + "/")
                        or c.path == "/")
    ws_url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    try:
        budget = _left(deadline, 300)
        asyncio.run(asyncio.wait_for(_execute(ws_url, cookies, budget), budget))
    except TimeoutError:
        raise StepFailed("kernel did not answer in time") from None
    except StepFailed:
        raise
    except Exception as e:  # noqa: BLE001 - connection problems of any kind are one reason
        raise StepFailed(f"kernel websocket: {type(e).__name__}") from None
    finally:
        try:
            http.delete(f"{server_url}api/kernels/{kernel_id}", headers=headers, timeout=10)
        except requests.RequestException:
            pass


async def _execute(ws_url: str, cookies: str, budget: float) -> None:
    """`budget`: the seconds left for the whole step, also the handshake's (tornado's own default
    of 20 s failed students whose busy server took longer to answer; a browser keeps waiting)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Cookie": cookies}, connect_timeout=budget,
                                               request_timeout=budget))
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps(_execute_request(msg_id, "1+1")))
    result = None
    try:
        while True:
            raw = await conn.read_message()
            if raw is None:
                raise StepFailed("kernel websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
            if kind == "execute_result":
                result = msg["content"]["data"].get("text/plain")
            elif kind == "execute_reply":
                if msg["content"].get("status") != "ok":
                    raise StepFailed("kernel: 1+1 failed")
                if result is None:  # the reply can overtake the iopub result; wait for it
                    continue
            if result is not None:
                if result.strip() != "2":
                    raise StepFailed("kernel: 1+1 was not 2")
                return
    finally:
        conn.close()


def _execute_request(msg_id: str, code: str) -> dict:
    return {
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "loadtest",
                   "session": uuid.uuid4().hex, "date": dt.datetime.now(dt.UTC).isoformat(), "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }


def _left(deadline: float, cap: float = 60.0) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise StepFailed("timed out (hard time limit)")
    return min(cap, left)
