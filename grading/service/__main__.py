"""Run the grading service: `python -m coursehub.grading.service [--settings FILE] [--port N]`.

Started, logged and stopped like the other services (coursehub.platform.service_runner).

JupyterHub starts it as a managed service on the local platform (see platform/hubconfig.py); at
scale it runs in its own pod with the same command. It refuses to start on an old database schema.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from urllib.parse import urlparse

log = logging.getLogger("coursehub.grading.service")

def main(argv: list[str] | None = None) -> int:
    from coursehub.platform import service_runner

    p = service_runner.parser("python -m coursehub.grading.service", "Run the grading service.")
    p.add_argument("--port", type=int, help="port to listen on (default: grading.port or $JUPYTERHUB_SERVICE_URL)")
    p.add_argument("--ip", help="address to listen on (default: from $JUPYTERHUB_SERVICE_URL, else 127.0.0.1)")
    return service_runner.run(argv, p, _serve)


def _serve(args, settings, stop) -> int:  # noqa: ANN001 - argparse.Namespace, Settings, service_runner.Stop
    from coursehub.startup import collector_paused, import_before_threads

    with collector_paused():  # its imports are what the service holds for life: frozen, never walked again
        from ..db import SchemaOutdated, check_schema, make_engine, redact
        from ..storage import BlobStore
        from .app import make_app, make_core
        from .coursedirs import ensure_course_dirs, sync_all_deadlines
        from .plugins import PluginContext, load_plugins

        # The request threads and the background passes (deadlines, LMS) import these on first use.
        import_before_threads("nbgrader.coursedir", "nbgrader.api")
    url = settings.grading_db_url()
    engine = make_engine(url)
    hint = f" --settings {settings.source}" if settings.source else ""
    try:
        check_schema(url, engine, settings_hint=hint)
    except SchemaOutdated as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = BlobStore(settings.storage_dir())
    swept = store.sweep_tmp()
    if swept:
        log.info("removed %d unfinished upload(s) left by an earlier stop", swept)
    core = make_core(settings, engine)
    # Locally a folder; on Kubernetes each course's shared volume, mounted by the chart (courseStorage).
    ensure_course_dirs(settings, core.catalog(), sync_deadlines=False)
    plugins = load_plugins(settings.grading.plugins, PluginContext(settings, engine))
    app = make_app(settings, core=core, plugins=plugins)

    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    parsed = urlparse(service_url) if service_url else None
    port = args.port or (parsed.port if parsed and parsed.port else settings.grading.port)
    ip = args.ip or (parsed.hostname if parsed else None) or ("127.0.0.1" if settings.local else "0.0.0.0")
    limit = core.limits.max_total_bytes * 4 + 2**20

    async def serve() -> None:
        server = app.listen(port, address=ip, max_body_size=limit, xheaders=not settings.local)
        ctx = app.settings["coursehub"]
        loop = asyncio.get_running_loop()
        loop.run_in_executor(ctx.executor, _sweep, core)
        loop.run_in_executor(ctx.executor, sync_all_deadlines, settings, core.catalog())
        log.info("grading service on http://%s:%d (database %s, storage %s)", ip, port, redact(url),
                 settings.storage_dir())
        from coursehub.grading.lms.runtime import start_background_sync

        # LMS grade sync outbox; logs and stays off if no LMS is set up; waits while a deadline presses.
        start_background_sync(settings, submission_rate=core.committer.recent_rate if core.committer else None)
        await stop.wait_async()  # SIGTERM/SIGINT (service_runner)
        ctx.stopping = True  # requests still arriving on open connections get 503 and retry
        server.stop()
        await asyncio.sleep(0.2)
        await loop.run_in_executor(None, lambda: ctx.executor.shutdown(wait=True))
        if core.committer is not None:  # every queued submission row committed before exit
            await loop.run_in_executor(None, core.committer.close)

    asyncio.run(serve())
    engine.dispose()
    return 0


def _sweep(core) -> None:  # noqa: ANN001
    try:
        removed = core.sweep_orphans()
        if removed:
            log.info("removed %d stored file(s) that no submission or release refers to", removed)
    except Exception:  # noqa: BLE001 - housekeeping must never stop the service
        log.exception("sweeping unreferenced files failed")


if __name__ == "__main__":
    sys.exit(main())
