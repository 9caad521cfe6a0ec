"""Per-user accounts and the user-server sandbox (platform/isolation.py), without a hub."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import re
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.accounts import random_prefix, remove_accounts

from coursehub.platform import isolation

as_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd")
with_bwrap = pytest.mark.skipif(os.geteuid() != 0 or not isolation.bwrap_works(), reason="needs root and bubblewrap")


@pytest.fixture
def prefix(monkeypatch):
    p = random_prefix()
    monkeypatch.setenv(isolation.PREFIX_ENV, p)
    yield p
    remove_accounts(p)


def test_unix_names_are_valid_deterministic_and_never_shared():
    hub_names = ["alice", "Alice", "ALICE", "al.ice", "al_ice", "al-ice", "a" * 200, "a" * 201, "élodie",
                 "x@example.edu", "", "-", "0123456789", "bob-0123456789", "bob-0123456789a", "bob"]
    names = [isolation.unix_name(n, "jupyter-") for n in hub_names]
    for n in names:
        assert re.fullmatch(r"jupyter-[a-z0-9-]*[a-z0-9]", n) and len(n) <= 32, n
    assert len(set(names)) == len(hub_names)  # case, punctuation and truncation never merge two users
    assert names == [isolation.unix_name(n, "jupyter-") for n in hub_names]
    assert isolation.unix_name("alice", "jupyter-") == "jupyter-alice"


def test_a_bad_prefix_is_refused(monkeypatch):
    monkeypatch.setenv(isolation.PREFIX_ENV, "root")
    with pytest.raises(isolation.IsolationError):
        isolation.user_prefix()


@as_root
def test_fifty_first_spawns_at_once_make_each_account_once(tmp_path, prefix):
    homes = tmp_path / "homes"
    names = [f"student{i}" for i in range(50)]
    with ThreadPoolExecutor(16) as pool:  # every name twice, concurrently: idempotent and race-free
        accounts = list(pool.map(lambda n: isolation.ensure_account(n, homes / n), names + names))
    uids = {a.pw_name: a.pw_uid for a in accounts}
    assert len(uids) == 50 and len(set(uids.values())) == 50
    for n in names:
        home = homes / n
        st = home.stat()
        assert st.st_uid == pwd.getpwnam(isolation.unix_name(n)).pw_uid and st.st_mode & 0o777 == 0o700


def _make(args: tuple[str, str]) -> int:
    name, home = args
    return isolation.ensure_account(name, Path(home)).pw_uid


@as_root
def test_two_hub_processes_creating_the_same_accounts_agree(tmp_path, prefix):
    jobs = [(f"s{i}", str(tmp_path / f"s{i}")) for i in range(12)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        first = pool.map(_make, jobs + jobs)
    assert first[:12] == first[12:]
    names = [e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(prefix)]
    assert len(names) == len(set(names)) == 12  # useradd alone can add one name twice when racing


@as_root
def test_an_account_of_another_hub_user_is_refused(tmp_path, prefix):
    name = isolation.unix_name("mallory")
    subprocess.run(["useradd", "--system", "--no-create-home", "--comment", "someone else", name], check=True)
    with pytest.raises(isolation.IsolationError, match="does not belong"):
        isolation.ensure_account("mallory", tmp_path / "mallory")


@as_root
def test_a_home_that_is_a_symlink_is_refused(tmp_path, prefix):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "eve").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(isolation.IsolationError, match="symbolic link"):
        isolation.ensure_account("eve", tmp_path / "eve")
    assert (tmp_path / "elsewhere").stat().st_uid == 0


@with_bwrap
def test_sandbox_shows_own_home_and_hides_state_even_inside_a_shown_checkout(tmp_path, prefix, monkeypatch):
    """A state folder inside the source checkout (the default .coursehub/) stays hidden although the
    checkout itself is shown again for the runtime."""
    from coursehub.paths import SOURCE_ROOT

    state = SOURCE_ROOT / f".test-state-{secrets.token_hex(3)}"
    try:
        (state / "homes").mkdir(parents=True)
        (state / "jupyterhub_cookie_secret").write_text("secret")
        account = isolation.ensure_account("alice", state / "homes" / "alice")
        other = isolation.ensure_account("bob", state / "homes" / "bob")
        (state / "homes" / "bob" / "work.ipynb").write_text("{}")
        os.chown(state / "homes" / "bob" / "work.ipynb", other.pw_uid, other.pw_gid)
        code = ("import os\n"
                f"s={str(state)!r}\n"
                "def can(p):\n"
                "    try:\n        open(p).read(); return True\n    except OSError: return False\n"
                "print(can(s+'/jupyterhub_cookie_secret'), can(s+'/homes/bob/work.ipynb'), os.path.isdir(s+'/homes/bob'),"
                " os.getuid())\n"
                "open('mine.txt','w').write('x')\n")
        cmd = isolation.sandbox_command([str(SOURCE_ROOT / ".venv" / "bin" / "python"), "-c", code],
                                        home=state / "homes" / "alice", hidden=[state], read_only=[],
                                        read_write=[], account=account)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["False", "False", "False", str(account.pw_uid)]
        assert (state / "homes" / "alice" / "mine.txt").stat().st_uid == account.pw_uid
    finally:
        shutil.rmtree(state, ignore_errors=True)
