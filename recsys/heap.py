"""Garbage-collector tuning for processes that hold loaded bundles."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect garbage once, then keep every object alive now (the loaded bundles: up to
    millions of id strings) out of the collector's full passes, which would otherwise walk
    them all every few thousand allocations. Call after loading; a later call first frees
    what earlier bundles left in reference cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


__all__ = ["settle_heap"]
