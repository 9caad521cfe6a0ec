"""The user server's entry point: `jupyterhub-singleuser`, without start-up work nobody waits for.

The local spawner runs `<env>/bin/python -c LAUNCH <env>/bin/jupyterhub-singleuser ARGS` instead
of `<env>/bin/jupyterhub-singleuser ARGS` (same interpreter, same arguments, same server); on
Kubernetes a user pod runs `python3 -c POD_LAUNCH jupyterhub-singleuser ARGS`. On 2
cores half of a server's start, 1.2 of 2.5 s to listening, went to two things done at import time
that no launch needs:

- jsonschema, imported by jupyter_server through jupyter_events, checks the "iri" formats with
  rfc3987-syntax when that is installed, and importing it builds an Earley parser from a grammar
  (about 1 s of CPU). Nothing validates an IRI while the server starts: importing coursehub puts a
  stand-in in its place that imports the real one on first use (`coursehub.deferred`), so the
  checks stay exactly as they were.
- JupyterLab's module reads its app version through an `AppOptions` whose npm registry default is
  asked of yarn (`node yarn.js config --json`: a Node.js process per server start). The version does
  not depend on the registry; that one import gets an empty yarn configuration, every later
  `AppOptions` (a build, the extension manager) the real one.

The server's own imports also run without the cyclic garbage collector (`coursehub.startup`:
1.04 -> 0.90 s of CPU to listening, alone on 2 cores).

Kernels and terminals are processes of their own and see none of this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coursehub.deferred import defer_slow_imports
from coursehub.startup import collector_paused

#: What the spawner runs with the environment's python, followed by the `jupyterhub-singleuser`
#: script's path (sys.argv[0] then, as when the script runs; `ps` still names it) and the server's
#: arguments. `-c` puts the working folder (the user's home) first on sys.path; it is taken off
#: before anything is imported, so a file in the home cannot stand in for coursehub, jupyterhub or
#: the standard library.
_ARGV_AND_PATH = "import sys; sys.path[:1] = [p for p in sys.path[:1] if p]; del sys.argv[0]\n"
LAUNCH = _ARGV_AND_PATH + "from coursehub.platform.userserver import main; sys.exit(main())"

#: The same on Kubernetes, where the pod's command is the image's: `python3` on the image's PATH runs
#: `main()` here with `jupyterhub-singleuser ARGS` as its argv. In an image whose python3 cannot
#: import coursehub it execs `jupyterhub-singleuser ARGS` itself, as if nothing had been changed.
POD_LAUNCH = _ARGV_AND_PATH + (
    "import os\n"
    "try:\n"
    "    from coursehub.platform.userserver import main\n"
    "except ImportError:\n"
    "    os.execvp(sys.argv[0], sys.argv)\n"
    "sys.exit(main())"
)


def command(python: str, script: str, args: list[str]) -> list[str]:
    """The user server's command line: `script` (the environment's `jupyterhub-singleuser`) with the
    server's `args`, run by the same environment's `python` through `main()` here."""
    return [python, "-c", LAUNCH, script, *args]


def pod_command(configured: list[str]) -> list[str]:
    """A user pod's command: `jupyterhub-singleuser ...` (z2jh's `singleuser.cmd`) through `main()`
    here; any other command as it is."""
    if configured and configured[0].rsplit("/", 1)[-1] == "jupyterhub-singleuser":
        return ["python3", "-c", POD_LAUNCH, *configured]
    return list(configured)


@contextmanager
def _yarn_not_asked() -> Iterator[None]:
    """While JupyterLab's modules are imported: an empty yarn configuration instead of asking yarn."""
    try:
        import jupyterlab.commands as commands
    except ImportError:  # no JupyterLab in this environment
        yield
        return
    original = getattr(commands, "_yarn_config", None)
    if original is None:  # another JupyterLab: import it as it is
        yield
        return
    commands._yarn_config = lambda logger: {"yarn config": {}, "npm config": {}}
    try:
        yield
    finally:
        commands._yarn_config = original


def import_jupyterlab() -> None:
    """Import JupyterLab's server side now, without its import-time yarn query."""
    with _yarn_not_asked():
        try:
            import jupyterlab.labapp  # noqa: F401
        except ImportError:
            pass


def main() -> Any:
    defer_slow_imports()  # done when coursehub was imported; said here because it matters here
    with collector_paused():  # the server's own imports, the bulk of its start (coursehub.startup)
        import_jupyterlab()
        import jupyter_server.serverapp  # noqa: F401
        from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main()
