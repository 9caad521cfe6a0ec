"""Modules that cost seconds to import and that a coursehub process does not use at start: put off
until first use.

jsonschema (under nbformat, jupyter_events and so under every Jupyter server, nbgrader, the grading
service, the worker and the autograder) checks the "iri" formats with rfc3987-syntax when that is
installed, and importing it builds an Earley parser from a grammar: about 1 s of CPU before the
first grade, the first request or the first notebook. Nothing validates an IRI while a process
starts. Importing `coursehub` puts a stand-in in its place (`defer_slow_imports`) that imports the
real module on its first use, so every check stays exactly as it was.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

#: Modules imported at start only to register something used later: {module: its functions}.
DEFERRED = {"rfc3987_syntax": ("is_valid_syntax",)}

_load_lock = threading.Lock()


def defer_import(name: str, functions: tuple[str, ...]) -> bool:
    """Put a stand-in for the top-level module `name` in sys.modules: `from name import f` gives a
    function that imports the real module on its first call and then calls the real `f`; any other
    attribute imports it too. False (nothing done) when the module is imported already or missing."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None:
        return False
    stand_in = types.ModuleType(name)
    stand_in.__spec__ = spec

    def real() -> types.ModuleType:
        with _load_lock:
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            return importlib.import_module(name)

    def forward(function: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(real(), function)(*args, **kwargs)

        call.__name__ = call.__qualname__ = function
        return call

    def module_getattr(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    for function in functions:
        setattr(stand_in, function, forward(function))
    stand_in.__getattr__ = module_getattr  # type: ignore[method-assign]  # PEP 562
    sys.modules[name] = stand_in
    return True


def defer_slow_imports() -> None:
    """Stand-ins for the modules in DEFERRED (safe to call again; a module imported already stays)."""
    for name, functions in DEFERRED.items():
        defer_import(name, functions)
