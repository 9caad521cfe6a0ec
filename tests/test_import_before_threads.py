"""Processes whose threads import nbformat on first use import it in the main thread first:
nbformat's package and its validator import each other, and a first import from two threads at
once deadlocked (the grading service answered a submission with 500 after a restart under a burst)."""

from __future__ import annotations

import inspect
import subprocess
import sys


def test_the_cyclic_modules_are_imported_in_the_calling_thread():
    code = ("import sys, threading\n"
            "from coursehub.startup import CYCLIC_IMPORTS, import_before_threads\n"
            "assert not any(m in sys.modules for m in CYCLIC_IMPORTS)\n"
            "import_before_threads('nbgrader.api')\n"
            "assert threading.active_count() == 1\n"
            "missing = [m for m in (*CYCLIC_IMPORTS, 'nbgrader.api') if m not in sys.modules]\n"
            "assert not missing, missing\n"
            "from nbformat.validator import ValidationError, get_validator\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_grading_service_imports_them_before_it_opens_the_database():
    from coursehub.grading.service import __main__ as service

    source = inspect.getsource(service._serve)
    assert source.index("import_before_threads(") < source.index("make_engine(url)")


def test_the_hub_imports_them_before_it_starts_its_preload_thread():
    from coursehub.platform.auth import CoursehubAuthenticator

    source = inspect.getsource(CoursehubAuthenticator.get_handlers)
    assert source.index("import_before_threads()") < source.index("threading.Thread(")
