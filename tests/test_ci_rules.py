"""The suite's own rules: directory markers and no silent skips in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _pytest(tmp_path: Path, env_ci: str | None, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "CI"}
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
