"""The package layout: `coursehub.platform` is `platform/`, `coursehub.grading` is `grading/`, nothing else.

pyproject.toml maps the two top-level folders into the `coursehub` package and lists every package
explicitly; these tests keep that list complete and make sure no second identity sneaks back in.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"coursehub": "coursehub", "coursehub.platform": "platform", "coursehub.grading": "grading"}


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _python_folders(root: Path) -> set[Path]:
    return {p.parent for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def test_package_dir_maps_the_top_level_folders() -> None:
    assert _setuptools()["package-dir"] == MAPPED


def test_every_folder_with_python_code_is_a_listed_package() -> None:
    listed = set(_setuptools()["packages"])
    expected = set()
    for package, folder in MAPPED.items():
        for d in _python_folders(REPO / folder):
            rel = d.relative_to(REPO / folder)
            expected.add(".".join([package, *rel.parts]))
    missing = expected - listed
    extra = listed - expected
    assert not missing, f"folders with Python code that pyproject.toml does not package: {sorted(missing)}"
    assert not extra, f"packages listed in pyproject.toml without a folder of Python code: {sorted(extra)}"


def test_no_symlinks_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True)
    links = [line.split("\t", 1)[1] for line in tracked.stdout.splitlines() if line.startswith("120000")]
    links += [str(p.relative_to(REPO)) for top in ("coursehub", "platform", "grading") for p in (REPO / top).rglob("*")
              if p.is_symlink()]
    assert links == [], f"symlinks give files two module identities: {links}"


def _import_from_checkout(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)


def test_grading_is_not_a_top_level_package() -> None:
    r = _import_from_checkout("import grading")
    assert r.returncode != 0
    assert "coursehub.grading" in r.stderr


def test_platform_from_the_checkout_is_the_standard_library() -> None:
    r = _import_from_checkout("import platform, sys; print(platform.python_version() == '%d.%d.%d' % sys.version_info[:3])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_one_module_identity_per_file() -> None:
    r = _import_from_checkout(
        "import coursehub.platform.courses as c, coursehub.grading.gradebook as g; print(c.__file__); print(g.__file__)"
    )
    assert r.returncode == 0, r.stderr
    courses, gradebook = r.stdout.split()
    assert Path(courses) == REPO / "platform" / "courses.py"
    assert Path(gradebook) == REPO / "grading" / "gradebook.py"
