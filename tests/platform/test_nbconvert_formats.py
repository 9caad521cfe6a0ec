"""/api/nbconvert on user servers: Jupyter Server's answer, worked out once, off the event loop, and
routed before Jupyter Server's own handler."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from coursehub.platform import nbconvert_formats as nf

#: In a fresh interpreter (nbconvert not imported yet): two requests at once and one after.
CONCURRENT = """
import asyncio, importlib.abc, json, sys, threading

on_main_thread = []

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "nbconvert.exporters.base":
            on_main_thread.append(threading.current_thread() is threading.main_thread())

sys.meta_path.insert(0, Spy())
from coursehub.platform import nbconvert_formats as nf

calls = []
real = nf.compute_formats

def counted():
    calls.append(1)
    return real()

nf.compute_formats = counted

async def requests():
    a, b = await asyncio.gather(nf.export_formats(), nf.export_formats())
    return a, b, await nf.export_formats()

a, b, c = asyncio.run(requests())
from nbconvert.exporters import base  # Jupyter Server's handler, step by step
expected = {n: {"output_mimetype": base.get_exporter(n).output_mimetype} for n in base.get_export_names()}
print(json.dumps({"on_main_thread": on_main_thread, "computed": len(calls), "answers": [a, b, c],
                  "expected": expected}))
"""

#: Which handler a real ServerApp (not listening) routes GET <base_url>api/nbconvert to.
ROUTE = """
import json, sys
from traitlets.config import Config
from jupyter_server.serverapp import ServerApp
from tornado.httputil import HTTPServerRequest

c = Config()
c.ServerApp.jpserver_extensions = {"coursehub.platform.nbconvert_formats": sys.argv[1] == "on"}
c.ServerApp.base_url = "/user/someone/"
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = 0
c.ServerApp.open_browser = False
c.ServerApp.root_dir = sys.argv[2]
app = ServerApp(config=c)
app.initialize(argv=[], find_extensions=False)
found = app.web_app.find_handler(HTTPServerRequest(method="GET", uri="/user/someone/api/nbconvert"))
print(f"{found.handler_class.__module__}.{found.handler_class.__qualname__}")
"""


def _python(code: str, *args: str, tmp_path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_CONFIG_PATH=str(tmp_path / "config"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_PLATFORM_DIRS="1")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_formats_are_jupyter_servers_worked_out_once_in_a_worker_thread(tmp_path):
    seen = json.loads(_python(CONCURRENT, tmp_path=tmp_path))
    assert seen["on_main_thread"] == [False], "nbconvert was imported on the event loop's thread"
    assert seen["computed"] == 1
    assert len(seen["expected"]) >= 5 and {"html", "python", "markdown"} <= set(seen["expected"])
    assert seen["answers"] == [seen["expected"]] * 3


@pytest.mark.parametrize(("extension", "handler"), [
    ("on", "coursehub.platform.nbconvert_formats.NbconvertFormatsHandler"),
    ("off", "jupyter_server.services.nbconvert.handlers.NbconvertRootHandler"),
])
def test_the_extension_takes_the_route_from_jupyter_server(tmp_path, extension, handler):
    assert _python(ROUTE, extension, str(tmp_path), tmp_path=tmp_path) == handler


def test_a_failure_is_not_kept_and_the_next_request_tries_again(monkeypatch):
    monkeypatch.setattr(nf, "_formats", None)
    monkeypatch.setattr(nf, "_pending", None)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("No module named 'nbconvert'")
        return {"python": {"output_mimetype": "text/x-python"}}

    monkeypatch.setattr(nf, "compute_formats", flaky)

    async def scenario():
        first = await asyncio.gather(nf.export_formats(), nf.export_formats(), return_exceptions=True)
        return first, await nf.export_formats(), await nf.export_formats()

    first, second, third = asyncio.run(scenario())
    assert [type(r) for r in first] == [ImportError, ImportError]
    assert second == third == {"python": {"output_mimetype": "text/x-python"}}
    assert len(attempts) == 2


def test_user_servers_load_it():
    from coursehub.platform.userconfig import server_app_config

    for staff in (False, True):
        assert server_app_config(staff=staff)["jpserver_extensions"]["coursehub.platform.nbconvert_formats"] is True
