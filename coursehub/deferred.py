"""Modules that cost seconds to import and that a coursehub process does not use at start: put off
until first use.

jsonschema (under nbformat, jupyter_events and so under every Jupyter server, nbgrader, the grading
service, the worker and the autograder) checks the "iri" formats with rfc3987-syntax when that is
installed, and importing it builds an Earley parser from a grammar: about 1 s of CPU before the
first grade, the first request or the first notebook. Nothing validates an IRI while a process
starts. Importing `coursehub` puts a stand-in in its place (`defer_slow_imports`) that imports the
real module on its first use, so every check stays exactly as it was. The same for two smaller ones
of jsonschema's format checkers: rfc3986-validator (its patterns) and isoduration (with arrow),
together ~50-60 ms of CPU at every coursehub process's start.

`import_without` is the same idea for one import: a dependency another package imports at start
only for functions a process never calls (setuptools under nbgrader.utils, for the autograder).
`package_without_init` is it for a package whose __init__ imports far more than a process uses
(nbconvert's imports every exporter, filter and template engine, for the autograder).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

#: Modules imported at start only to register something used later: {module: its functions}.
#: rfc3987_syntax: an Earley parser built at import (~1-2.5 s of CPU); rfc3986_validator: its
#: "uri" regular expressions compiled at import (~20-30 ms in every process), both for jsonschema.
DEFERRED = {"rfc3987_syntax": ("is_valid_syntax",), "rfc3986_validator": ("validate_rfc3986",)}

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

    def module_getattr(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    for function in functions:
        setattr(stand_in, function, on_first_call(real, function))
    stand_in.__getattr__ = module_getattr  # type: ignore[method-assign]  # PEP 562
    sys.modules[name] = stand_in
    return True


def on_first_call(load: Callable[[], types.ModuleType], function: str) -> Callable[..., Any]:
    """A function that loads the real module (`load()`) when it is first called and calls its
    `function`: the stand-in for one function of a module that is put off."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(load(), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


def import_without(module: str, stand_ins: dict[str, tuple[str, ...]]) -> bool:
    """Import `module` while the modules in `stand_ins` ({dotted name: functions it takes from
    them}) are stand-ins whose functions load the real module on first call; the stand-ins leave
    sys.modules afterwards, so a later import of them is the real one. For a dependency imported
    at start only for a function the process never calls. False (nothing done) when `module` or
    any of them is imported already."""
    parents = {".".join(name.split(".")[:i]) for name in stand_ins for i in range(1, name.count(".") + 1)}
    if any(m in sys.modules for m in (module, *stand_ins, *parents)):
        return False
    made: dict[str, types.ModuleType] = {}
    for name in sorted(parents):
        made[name] = types.ModuleType(name)
        made[name].__path__ = []  # a package to the import system; it finds nothing in it
    for name, functions in stand_ins.items():
        made[name] = types.ModuleType(name)
        for function in functions:
            setattr(made[name], function, on_first_call(lambda name=name: importlib.import_module(name), function))
    for name, stand_in in made.items():
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(made[parent], child, stand_in)
    sys.modules.update(made)
    try:
        importlib.import_module(module)
    finally:
        for name, stand_in in made.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    return True


def package_without_init(name: str, names: dict[str, tuple[str, ...]]) -> bool:
    """Put the package `name` in sys.modules without running its __init__, with the `names`
    ({submodule: names}) taken from those submodules now. Its submodules import as usual. Any other
    attribute is a submodule of that name if there is one, else the real __init__ runs (once) and
    it is looked up there: code that uses the package's other top-level names gets them, and only
    then pays for them. False (nothing done) when the package is imported already, missing, or laid
    out otherwise (then it imports the ordinary way)."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    package = importlib.util.module_from_spec(spec)
    once = threading.Lock()  # threads that ask at once: the __init__ runs once, then all see it

    def complete(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            return importlib.import_module(f"{name}.{attr}")
        except ModuleNotFoundError as e:
            if e.name != f"{name}.{attr}":
                raise
        with once:
            getattr_ = package.__dict__.pop("__getattr__", None)
            if getattr_ is not None:
                try:
                    spec.loader.exec_module(package)  # type: ignore[union-attr]
                except BaseException:
                    package.__getattr__ = getattr_  # type: ignore[method-assign]
                    raise
        return getattr(package, attr)

    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
    try:
        for submodule, attrs in names.items():
            module = importlib.import_module(f"{name}.{submodule}")
            for attr in attrs:
                setattr(package, attr, getattr(module, attr))
    except (ImportError, AttributeError):  # another layout: the ordinary import
        del sys.modules[name]
        if parent:
            delattr(sys.modules[parent], child)
        return False
    package.__getattr__ = complete  # type: ignore[method-assign]  # PEP 562
    return True


def defer_slow_imports() -> None:
    """Stand-ins for the modules in DEFERRED (safe to call again; a module imported already stays)."""
    for name, functions in DEFERRED.items():
        defer_import(name, functions)
    _isoduration_without_arrow()


def _isoduration_without_arrow() -> None:
    """jsonschema checks the "duration" format with isoduration, and needs its exception class at
    import (`raises=isoduration.DurationParsingException`); isoduration's __init__ imports its parser
    and formatter, and with them arrow (and dateutil): ~25-30 ms in every process. The package and its
    parser are made here without their __init__, with that one class from its own module; the first
    other name asked of them (a duration checked, `from isoduration import parse_duration`) runs
    their real __init__, which takes the same class from the same module."""
    if not package_without_init("isoduration", {}):
        return
    if package_without_init("isoduration.parser", {"exceptions": ("DurationParsingException",)}):
        package = sys.modules["isoduration"]
        package.DurationParsingException = sys.modules["isoduration.parser"].DurationParsingException
