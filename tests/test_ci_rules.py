"""The suite's own rules: directory markers and no silent skips in CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from coursehub.platform import ports

TESTS = Path(__file__).resolve().parent


def _pytest(tmp_path: Path, env_ci: str | None, *args: str) -> subprocess.CompletedProcess:
    import os

    # not this run's own CI flag, account prefix, port band or pytest-xdist worker identity
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "COURSEHUB_UNIX_USER_PREFIX", "COURSEHUB_PORT_RANGE") and not k.startswith("PYTEST_XDIST")}
    if env_ci is not None:
        env["CI"] = env_ci
    env["PYTHONPATH"] = str(TESTS)  # the copied conftest.py loads tests/support/fixtures.py
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           "-c", "/dev/null", *args], cwd=tmp_path, env=env, capture_output=True, text=True)


def _suite(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "integration").mkdir()
    (tmp_path / "integration" / "test_real.py").write_text("def test_real():\n    pass\n")
    (tmp_path / "test_unit.py").write_text(
        "import pytest\n\ndef test_unit():\n    pass\n\n"
        "def test_needs_tool():\n    pytest.skip('frobnicator is not installed')\n"
    )


def test_integration_marker_comes_from_the_directory(tmp_path: Path) -> None:
    _suite(tmp_path)
    r = _pytest(tmp_path, None, "-m", "not integration", "-p", "no:asyncio")
    assert "2 passed" not in r.stdout
    assert "1 passed, 1 skipped, 1 deselected" in r.stdout, r.stdout
    r = _pytest(tmp_path, None, "-m", "integration", "-p", "no:asyncio")
    assert "1 passed, 2 deselected" in r.stdout, r.stdout


def test_a_skip_fails_under_ci(tmp_path: Path) -> None:
    _suite(tmp_path)
    r = _pytest(tmp_path, "true", "-p", "no:asyncio")
    assert r.returncode == 1
    assert "frobnicator is not installed" in r.stdout
    assert "2 passed" in r.stdout and "1 failed" in r.stdout, r.stdout
    r = _pytest(tmp_path, None, "-p", "no:asyncio")
    assert r.returncode == 0, r.stdout


def test_a_thread_that_dies_with_an_exception_fails_its_test(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_threads.py").write_text(
        "import threading\n\n"
        "def run(fail):\n"
        "    t = threading.Thread(target=lambda: 1 / 0 if fail else None)\n"
        "    t.start()\n"
        "    t.join()\n\n"
        "def test_quiet_thread():\n    run(False)\n\n"
        "def test_dying_thread():\n    run(True)\n")
    r = _pytest(tmp_path, None, "-p", "no:asyncio")
    assert r.returncode == 1, r.stdout
    assert "1 passed" in r.stdout and ("1 failed" in r.stdout or "1 error" in r.stdout), r.stdout
    assert "ZeroDivisionError" in r.stdout and "test_dying_thread" in r.stdout


def test_each_parallel_worker_has_its_own_account_prefix_and_port_band(tmp_path: Path) -> None:
    """scripts/test runs pytest-xdist workers side by side; each removes its test accounts when it ends,
    so a shared prefix would delete the Unix accounts another worker's hub is still using. And each
    draws the ports of the servers it starts from its own band, so neither takes a port the other has
    just found free (a grading service failed once with "Address already in use")."""
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    seen = tmp_path / "seen"
    seen.mkdir()
    for name in ("a", "b"):
        (tmp_path / f"test_{name}.py").write_text(
            "import os, pathlib, time\n\n"
            f"def test_{name}():\n"
            "    time.sleep(0.5)  # both workers are up: each gets one file\n"
            f"    pathlib.Path({str(seen)!r}, '{name}').write_text(os.environ['COURSEHUB_UNIX_USER_PREFIX']"
            " + ' ' + os.environ['COURSEHUB_PORT_RANGE'])\n")
    r = _pytest(tmp_path, None, "-p", "no:asyncio", "-n", "2", "--dist", "loadfile")
    assert r.returncode == 0, r.stdout + r.stderr
    prefixes, bands = zip(*(p.read_text().split() for p in seen.iterdir()), strict=True)
    assert set(prefixes) == {"chtestgw0-", "chtestgw1-"}, prefixes
    assert all(re.fullmatch(r"chtest[a-z0-9]*-", p) for p in prefixes)  # what sessionfinish may remove
    (low0, high0), (low1, high1) = sorted(tuple(int(x) for x in band.split("-")) for band in bands)
    assert low0 < high0 < low1 < high1, bands  # two bands that do not overlap
    ephemeral_low, _ = ports.ephemeral_range()
    assert high1 < ephemeral_low and high1 - low0 > 5000, bands  # outside the kernel's, and wide
