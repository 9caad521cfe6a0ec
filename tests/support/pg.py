"""A throwaway PostgreSQL 15 cluster for tests and benchmarks.

    with pg_cluster(tmp_path) as pg:
        engine = create_engine(pg.url)   # postgresql+psycopg://postgres@127.0.0.1:<port>/postgres
        url = pg.create_database()       # a fresh, uniquely named database on the same server
        pg.restart()                     # fault tests

Tests do not start their own: they use the session's one server through the `pg_server`,
`pg_database` and `pg_url` fixtures (tests/support/fixtures.py); benchmarks call pg_cluster directly.

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

    def url_for(self, database: str) -> str:
        """The URL of another database on this server."""
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    def _admin(self, sql: str, **params: str) -> None:
        """One statement outside a transaction (CREATE DATABASE refuses to run in one)."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.execute(sa.text(sql), params)
        finally:
            engine.dispose()

    def create_database(self, hint: str = "t") -> str:
        """A new empty database with a unique name (tests sharing one server never see each other's)."""
        import uuid

        name = f"{hint}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def close_connections(self, url: str) -> None:
        """Cut the connections a test left open to a database of create_database. The database stays
        until the server goes (DROP DATABASE forces a checkpoint: slower than a whole new cluster)."""
        self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n",
                    n=url.rsplit("/", 1)[1])

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
