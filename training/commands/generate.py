"""`recsys data generate`: the synthetic retailer."""

from __future__ import annotations

import typer


def register(data_app: typer.Typer) -> None:
    """Add `generate` to the `recsys data` group."""
