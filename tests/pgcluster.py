"""A throwaway PostgreSQL cluster for tests: initdb in a temporary folder, on a free loopback port.

    from pgcluster import postgres_cluster
    with postgres_cluster(tmp_path) as url:   # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        ...

PostgreSQL refuses to run as root; when the tests run as root the cluster runs as the `postgres`
user (its data folder then lives in a fresh folder under /tmp that this user owns, since pytest's
tmp_path is private to root). The cluster is stopped and removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _bin(name: str) -> str:
    for d in (None, "/usr/lib/postgresql/15/bin", "/usr/local/bin"):
        path = shutil.which(name, path=d) if d else shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"{name} not found: install PostgreSQL (scripts/setup --test)")


def available() -> bool:
    try:
        _bin("initdb")
        _bin("pg_ctl")
        return True
    except FileNotFoundError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_cluster(tmp_path: Path, dbname: str = "postgres") -> Iterator[str]:
    run_as: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        base = Path(tempfile.mkdtemp(prefix="pgcluster-"))
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
    else:
        base = Path(tmp_path) / "pgcluster"
        base.mkdir()
    data, log = base / "data", base / "server.log"
    port = _free_port()
    env = dict(os.environ, LC_ALL="C", LANG="C")
    subprocess.run([*run_as, _bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, env=env)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    subprocess.run([*run_as, _bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"],
                   check=True, capture_output=True, env=env)
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{dbname}"
        if dbname != "postgres":
            subprocess.run([*run_as, _bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", dbname],
                           check=True, capture_output=True, env=env)
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {log}")
            time.sleep(0.1)
        yield url
    finally:
        subprocess.run([*run_as, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(base, ignore_errors=True)
