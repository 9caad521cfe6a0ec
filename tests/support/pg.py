"""A throwaway PostgreSQL 15 cluster for tests and benchmarks.

    with pg_cluster(tmp_path) as pg:
        engine = create_engine(pg.url)   # postgresql+psycopg://postgres@127.0.0.1:<port>/postgres
        pg.restart()                     # fault tests

initdb refuses to run as root, so when we are root the cluster belongs to `nobody` (its folder is
chowned, the server is started through `setpriv`); as any other user it simply runs as that user.
It listens on a free loopback port with its socket folder inside the cluster folder, trusts local
connections (nothing else can reach it), and is stopped (and its folder removed) at exit.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .net import free_port

SEARCH = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")


def pg_bin(name: str) -> str:
    import glob

    for folder in [*SEARCH, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        p = Path(folder) / name
        if p.exists():
            return str(p)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} was not found (install postgresql-15; see scripts/setup)")
    return found


def available() -> bool:
    try:
        pg_bin("initdb")
        pg_bin("pg_ctl")
        return True
    except RuntimeError:
        return False


@dataclass
class PgCluster:
    root: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as is None:
            return list(args)
        user = pwd.getpwnam(self.run_as)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *args]

    def _run(self, *args: str, timeout: float = 120) -> None:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        r = subprocess.run(self._cmd(*args), env=env, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                               f"{self.log()[-3000:]}")

    def log(self) -> str:
        p = self.root / "postgres.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def init(self) -> None:
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                     f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n"
                     "shared_buffers = 64MB\nfsync = on\nsynchronous_commit = on\n")

    def start(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop and start the server (connections are cut; committed data must survive)."""
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-m", mode,
                  "-w", "-t", "60", "restart")

    def running(self) -> bool:
        r = subprocess.run(self._cmd(pg_bin("pg_ctl"), "-D", str(self.data), "status"), capture_output=True,
                           cwd=self.root)
        return r.returncode == 0


@contextmanager
def pg_cluster(parent: Path | None = None) -> Iterator[PgCluster]:
    run_as = "nobody" if os.geteuid() == 0 else None
    if run_as:
        # `nobody` must reach the folder, so it goes directly in the system temp folder (world-
        # traversable), not below pytest's 0700 folders (which other pytest runs may chmod back).
        root = Path(tempfile.mkdtemp(prefix="coursehub-pg-"))
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
        root.chmod(0o700)
    else:
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
    cluster = PgCluster(root, free_port(), run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.running():
                cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
