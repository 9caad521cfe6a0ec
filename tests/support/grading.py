"""Run the real grading service process for tests and benchmarks (with a FakeHub or the real hub)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from .fakehub import FakeHub
from .net import free_port, wait_until


@dataclass
class GradingService:
    url: str  # ends with /services/grading/
    port: int
    settings_file: Path
    log_file: Path
    proc: subprocess.Popen
    env: dict

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def start(self, timeout: float = 60) -> None:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "coursehub.grading.service"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        health = f"{self.url}health"

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"grading service exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return requests.get(health, timeout=2).ok

        wait_until(up, timeout=timeout, what="grading service")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_settings(tmp_path: Path, courses_dir: Path, port: int, **grading: object) -> Path:
    data = {
        "mode": "local",
        "state_dir": str(tmp_path / "state"),
        "courses_dir": str(courses_dir),
        "grading": {"port": port, **grading},
        "spawner": {"idle_timeout": 0},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "grading-settings.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def running_service(tmp_path: Path, courses_dir: Path, hub: FakeHub, env: dict | None = None,
                    **grading: object) -> Iterator[GradingService]:
    port = free_port()
    settings_file = write_settings(tmp_path, courses_dir, port, **grading)
    env = {**os.environ, **hub.service_env(port), "COURSEHUB_SETTINGS": str(settings_file), **(env or {})}
    svc = GradingService(f"http://127.0.0.1:{port}/services/grading/", port, settings_file,
                         tmp_path / "grading.log", None, env)  # type: ignore[arg-type]
    svc.start()
    try:
        yield svc
    except BaseException:
        print(f"--- grading service log (tail) ---\n{svc.log()[-5000:]}")
        raise
    finally:
        svc.stop()


@dataclass
class InProcessService:
    """The grading service's tornado app on a thread of this process (tests that inject faults
    into its core or storage; the real process is `running_service`)."""

    url: str
    app: object
    core: object
    settings: object

    @property
    def ctx(self):  # noqa: ANN201 - the app's ServiceContext
        return self.app.settings["coursehub"]  # type: ignore[attr-defined]


@contextmanager
def inprocess_service(tmp_path: Path, courses_dir: Path, hub: FakeHub, core_factory=None,  # noqa: ANN001
                      extra_handlers: list | None = None, **app_kwargs: object) -> Iterator[InProcessService]:
    """Serve `make_app` on 127.0.0.1 from a thread. `core_factory(settings)` may build the core
    (default: the configured database and storage, schema created)."""
    import asyncio
    import threading

    from coursehub.grading.db import check_schema, make_engine
    from coursehub.grading.service.app import make_app, make_core
    from coursehub.platform.settings import load_settings

    port = free_port()
    settings_file = write_settings(tmp_path, courses_dir, port)
    env = hub.service_env(port)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = load_settings(settings_file)
    if core_factory is None:
        engine = make_engine(settings.grading_db_url())
        check_schema(settings.grading_db_url(), engine)
        core = make_core(settings, engine)
    else:
        core = core_factory(settings)
    app = make_app(settings, core=core, extra_handlers=extra_handlers, **app_kwargs)  # type: ignore[arg-type]
    ready = threading.Event()
    state: dict = {}

    def run() -> None:
        async def main() -> None:
            server = app.listen(port, address="127.0.0.1")
            state["stop"], state["loop"] = asyncio.Event(), asyncio.get_running_loop()
            ready.set()
            await state["stop"].wait()
            server.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True, name="grading-inprocess")
    thread.start()
    ready.wait(10)
    try:
        yield InProcessService(f"http://127.0.0.1:{port}/services/grading/", app, core, settings)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        app.settings["coursehub"].executor.shutdown(wait=False, cancel_futures=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
