"""Shared CLI plumbing: domain errors become one clear line and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from recsys.errors import RecsysError


@contextmanager
def fail_cleanly() -> Iterator[None]:
    """Turn a ``RecsysError`` into ``error: <sentence>`` on stderr and exit status 2."""
    try:
        yield
    except RecsysError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
