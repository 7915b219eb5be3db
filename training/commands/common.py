"""Shared CLI plumbing: one kind of command group, domain errors as one line and exit code 2."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from recsys.errors import RecsysError

# Click's plain help: options wrap instead of being cut at 80 columns, and a boolean option
# reads as the flag it is (``--demo / --no-demo``), where Rich's panels print ``<bool>``.
# Without a terminal (a pipe, CI) the width is 120, not Python's fallback of 80, so that the
# command lists' one-line summaries are not cut either.
HELP_SETTINGS = {"max_content_width": 120, "help_option_names": ["--help", "-h"],
                 "terminal_width": shutil.get_terminal_size((120, 24)).columns}


def command_group(help: str, **kwargs: Any) -> typer.Typer:
    """A ``typer.Typer`` with the CLI's help format; ``kwargs`` go to ``typer.Typer``."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None,
                       context_settings=HELP_SETTINGS, **kwargs)


@contextmanager
def fail_cleanly() -> Iterator[None]:
    """Turn a ``RecsysError`` into ``error: <sentence>`` on stderr and exit status 2."""
    try:
        yield
    except RecsysError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
