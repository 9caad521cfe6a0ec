"""Issue 17: what `coursehub autograde` imports before its workers fork, and the memory a worker
gives back between submissions."""

from __future__ import annotations

import subprocess
import sys
import types

from coursehub.grading.autograde import cli, pool

LEAN_IMPORT = """
import importlib.metadata, os, sys
from coursehub.grading.autograde import cli
cli._import_nbgrader_without_server_extensions()
from traitlets.config import Config
from coursehub.grading.autograde import gradebook, pool, steps
import nbgrader
from nbgrader.preprocessors import SaveAutoGrades
steps.pipeline(Config())  # nbgrader's preprocessors, as the grading run builds them
leaked = sorted(m for m in sys.modules if m.startswith(("nbgrader.server_extensions", "nbgrader.exchange",
                                                          "jupyter_server")))
assert not leaked, leaked
assert "setuptools" not in sys.modules and "pkg_resources" not in sys.modules  # put off until used
assert "requests" not in sys.modules and "urllib3" not in sys.modules  # nbgrader.auth's, put off too
assert nbgrader.__version__ == importlib.metadata.version("nbgrader"), nbgrader.__version__
assert os.path.isdir(os.path.join(os.path.dirname(nbgrader.__file__), "alembic"))
# nbconvert without its exporters' filters and templates (cli._import_nbconvert_without_exporters)
unused = sorted(m for m in ("mistune", "bs4", "bleach", "nbconvert.filters", "nbconvert.exporters.html")
                if m in sys.modules)
assert not unused, unused
import nbconvert
assert nbconvert.__version__ == importlib.metadata.version("nbconvert"), nbconvert.__version__
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters import HTMLExporter  # any other name: nbconvert's own __init__, then
assert nbconvert.HTMLExporter is HTMLExporter and "mistune" in sys.modules
print("ok")
"""


def assert_runs_ok(code: str) -> None:
    """`code` run in a fresh interpreter (nothing imported yet) passes its asserts and prints ok."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_grading_imports_nbgrader_without_its_server_extensions():
    assert_runs_ok(LEAN_IMPORT)


ARCHIVE_AFTER_LEAN_IMPORT = """
import os, sys, tempfile, zipfile
from coursehub.grading.autograde import cli
cli._import_nbgrader_without_server_extensions()
from nbgrader import utils
assert "setuptools" not in sys.modules
d = tempfile.mkdtemp()
with zipfile.ZipFile(os.path.join(d, "a.zip"), "w") as z:
    z.writestr("sub/x.txt", "hello")
os.mkdir(os.path.join(d, "out"))
utils.unzip(os.path.join(d, "a.zip"), os.path.join(d, "out"), zip_ext=[".zip"], create_own_folder=False, tree=True)
assert open(os.path.join(d, "out", "sub", "x.txt")).read() == "hello"  # the real setuptools did it
import setuptools, setuptools.command
assert setuptools.__version__ and sys.modules["setuptools.archive_util"].unpack_archive is not utils.unpack_archive
print("ok")
"""


def test_nbgrader_s_archive_functions_still_work_and_setuptools_is_the_real_one():
    assert_runs_ok(ARCHIVE_AFTER_LEAN_IMPORT)


REQUESTS_AFTER_LEAN_IMPORT = """
import sys
from coursehub.grading.autograde import cli
cli._import_nbgrader_without_server_extensions()
import nbgrader.api
from nbgrader.auth import jupyterhub
assert "requests" not in sys.modules
try:  # what nbgrader's JupyterHub authenticator calls: the real requests, loaded now
    jupyterhub.requests.request("GET", "http://127.0.0.1:9/hub/api", timeout=5)
except Exception as e:
    assert type(e).__module__ == "requests.exceptions", type(e)
else:
    raise AssertionError("nothing listens on port 9")
import requests
assert requests.__version__ and sys.modules["requests"] is requests and callable(requests.get)
print("ok")
"""


def test_nbgrader_s_hub_requests_still_work_and_requests_is_the_real_one():
    assert_runs_ok(REQUESTS_AFTER_LEAN_IMPORT)


def test_an_already_imported_nbgrader_is_left_alone():
    import nbgrader

    cli._import_nbgrader_without_server_extensions()
    assert sys.modules["nbgrader"] is nbgrader
    assert hasattr(nbgrader, "_load_jupyter_server_extension")  # the full package, as imported


def test_releasing_free_memory_works_and_is_a_no_op_without_malloc_trim(monkeypatch):
    pool.release_free_memory()  # glibc here: malloc_trim exists and is called
    monkeypatch.setattr(pool, "_malloc_trim", None)
    monkeypatch.setattr(pool.ctypes, "CDLL", lambda *_a, **_k: types.SimpleNamespace())  # a libc without it
    pool.release_free_memory()
    assert pool._malloc_trim is False
    pool.release_free_memory()

