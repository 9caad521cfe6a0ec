"""Every registered command loads and explains itself; a mistyped command fails clearly."""

from __future__ import annotations

import pytest

from coursehub.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: coursehub {name}")
    assert COMMANDS[name][1] in " ".join(out.split())


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade-everything"])
    assert exc.value.code == 2
    assert "invalid choice: 'grade-everything'" in capsys.readouterr().err
