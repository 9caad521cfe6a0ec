"""Start-up imports without the cyclic garbage collector.

A process that is started again and again (a user server at every launch, the autograder at every
run) imports thousands of modules before it does anything, and every object those imports make
stays reachable. CPython 3.11's collector still runs over that growing heap hundreds of times on
the way: 12-25 % of the start-up CPU measured here (a user server's imports 1.10 -> 0.93 s, the
autograder's 0.63 -> 0.54 s). `collector_paused` turns it off for the imports and then freezes
what they made (`gc.freeze`), so later collections, and children forked afterwards (the
autograder's workers), skip those objects instead of walking and copying their pages.

The sandbox's kernel zygote does the same inline (it may only use the standard library). The hub
(`platform/run_hub.py`) and the grading service freeze their imports the same way: they start once,
but each full collection of a running process walked them again (the hub's took about 0.1 s of its
event loop each, 78 ms after; the service's 80-110 ms, about 40 ms after).

`import_before_threads` is for processes whose threads import nbformat on first use.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(freeze: bool = True) -> Iterator[None]:
    """No cyclic collection inside; afterwards everything alive is frozen (unless `freeze` is
    False: for bulk work whose objects are garbage once it is done, like an export) and the
    collector is on again. Left alone when the collector was already off (someone else decided)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        gc.enable()


#: nbformat's package and its validator import each other. Two threads importing them for the
#: first time at once can deadlock: Python raises `_DeadlockError` in one and leaves a half-made
#: module to the other (the grading service answered a submission with 500 after a restart).
CYCLIC_IMPORTS = ("nbformat", "nbformat.validator")


def import_before_threads(*also: str) -> None:
    """Import `CYCLIC_IMPORTS` (and `also`) now: call it in the main thread before starting the
    threads that would otherwise import them on first use."""
    for name in (*CYCLIC_IMPORTS, *also):
        importlib.import_module(name)
