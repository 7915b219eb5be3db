"""`--help` of every `recsys` command: nothing cut short, boolean options shown as flags."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from training.cli import app


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer ships its own copy of Click)
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(typer.main.get_command(app)), ids=" ".join)
def test_help_is_whole_and_flags_read_as_flags(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "Usage: recsys" in result.output
    assert "…" not in result.output  # Rich's panels cut cells at the terminal width
    assert "<bool>" not in result.output


def test_boolean_override_reads_as_its_two_flags() -> None:
    result = CliRunner().invoke(app, ["picks", "--help"])
    assert "--exclude-purchased / --include-purchased" in result.output
