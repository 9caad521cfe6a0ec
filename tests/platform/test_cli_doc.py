"""The CLI reference and the docs agree with the parsers: every flag documented, every documented flag real."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from coursehub.cli import COMMANDS, build_parser
from coursehub.paths import SOURCE_ROOT

REFERENCE = SOURCE_ROOT / "docs" / "operators" / "cli.md"
DOCS = [*sorted((SOURCE_ROOT / "docs").rglob("*.md")), SOURCE_ROOT / "README.md"]


def _flags(p: argparse.ArgumentParser) -> set[str]:
    """Every long flag of `p` and of its sub-commands (`coursehub textbook build --force`)."""
    flags = {s for a in p._actions for s in a.option_strings if s.startswith("--")} - {"--help"}
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                flags |= _flags(sub)
    return flags


def _options(name: str) -> set[str]:
    parser = build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return _flags(sub.choices[name])


def _section(text: str, name: str) -> str:
    m = re.search(rf"^## coursehub {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"docs/operators/cli.md has no section for `coursehub {name}`: run scripts/cli-reference"
    return m.group(1)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_flag_is_in_the_reference(name: str) -> None:
    section = _section(REFERENCE.read_text(), name)
    missing = sorted(o for o in _options(name) if f"`{o}`" not in section)
    assert not missing, f"coursehub {name}: {missing} not in docs/operators/cli.md (run scripts/cli-reference)"


def test_reference_is_current() -> None:
    r = subprocess.run([sys.executable, str(SOURCE_ROOT / "scripts" / "cli-reference"), "--check"])
    assert r.returncode == 0, "docs/operators/cli.md is stale: run scripts/cli-reference"


_INVOCATION = re.compile(r"(?<!-n )(?<!--namespace )(?<![\w/.=-])coursehub ([a-z][a-z-]*)((?:[ \t]+[^\s`|;&#]+)*)")


def problems(docs: list) -> list[str]:
    """`coursehub COMMAND --flag` mentions in `docs` whose command or flag does not exist."""
    wrong = []
    for doc in docs:
        for m in _INVOCATION.finditer(doc.read_text()):
            name = m.group(1)
            flags = re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", m.group(2))
            if name not in COMMANDS:
                if flags:  # prose like "coursehub is ..." has no flags; "coursehub frobnicate --now" does
                    wrong.append(f"{doc.name}: `coursehub {name}` is not a command")
                continue
            known = _options(name)
            wrong += [f"{doc.name}: `coursehub {name} {f}` is not a flag" for f in flags if f not in known]
    return wrong


def test_documented_commands_and_flags_exist() -> None:
    wrong = problems([d for d in DOCS if d != REFERENCE])
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_made_up_commands_and_flags(tmp_path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("Run `coursehub export --no-such-flag --out f` and `coursehub frobnicate --now`.\n")
    wrong = problems([doc])
    assert len(wrong) == 2
    assert "--no-such-flag" in wrong[0] and "frobnicate" in wrong[1]
