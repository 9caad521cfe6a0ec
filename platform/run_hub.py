"""`python -m coursehub.platform.run_hub [jupyterhub] ARGS`: JupyterHub's own command, started after
`import coursehub`.

Run as `jupyterhub ...`, the hub imports jsonschema (through jupyter_events) before it reads our
config, and with it rfc3987-syntax, which builds an Earley parser at import: about 2 s of CPU at
every hub start, before the first request. Importing coursehub first puts that import off until
an IRI is validated (`coursehub.deferred`), as in every other coursehub process. The Zero to
JupyterHub chart puts the program's name first in the hub's args (`jupyterhub --config ...`): a
leading `jupyterhub` is dropped, so the chart's args (--debug, --upgrade-db) stay its own.

JupyterHub's imports run without the cyclic collector and are then frozen (`coursehub.startup`):
each full collection of a running hub walked them again, a pause of about 0.1 s on its event loop.
"""

from __future__ import annotations

import sys

import coursehub  # noqa: F401 - the deferred imports are in place before JupyterHub's


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["jupyterhub"]:
        args = args[1:]
    from coursehub.startup import collector_paused

    with collector_paused():  # JupyterHub's imports, frozen: its full collections never walk them again
        from jupyterhub.app import main as jupyterhub_main

    jupyterhub_main(args)


if __name__ == "__main__":
    main()
