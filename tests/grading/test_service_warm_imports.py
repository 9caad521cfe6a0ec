"""The grading service imports what its threads would import lazily before any thread starts:
nbformat's package and validator import each other, and a first import of them from two threads
at once deadlocked (a submission answered 500 after a restart under a burst)."""

from __future__ import annotations

import subprocess
import sys


def test_warm_imports_load_the_cyclic_modules_in_one_thread():
    code = ("import sys, threading\n"
            "from coursehub.grading.service.__main__ import WARM_IMPORTS, warm_imports\n"
            "assert not any(m in sys.modules for m in WARM_IMPORTS)\n"
            "warm_imports()\n"
            "assert threading.active_count() == 1\n"
            "missing = [m for m in WARM_IMPORTS if m not in sys.modules]\n"
            "assert not missing, missing\n"
            "from nbformat.validator import ValidationError, get_validator\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_service_warms_them_before_it_opens_the_database():
    import inspect

    from coursehub.grading.service import __main__ as service

    source = inspect.getsource(service._serve)
    assert source.index("warm_imports()") < source.index("make_engine(url)")
