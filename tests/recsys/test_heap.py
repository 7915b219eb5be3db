"""settle_heap: loaded bundles out of the collector's passes, old ones freed on the next load."""

from __future__ import annotations

import gc
import weakref

from recsys.heap import settle_heap


def test_settle_heap_freezes_what_is_loaded_and_frees_old_cycles_on_the_next_call() -> None:
    class Node:
        pass

    loaded = Node()
    loaded.self = loaded  # type: ignore[attr-defined]  # a cycle, as pandas objects have
    alive = weakref.ref(loaded)
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0 and alive() is not None
        del loaded  # the old bundle is replaced: cyclic garbage, but frozen
        gc.collect()
        assert alive() is not None  # a full collection does not see frozen objects
        settle_heap()  # the next load
        assert alive() is None
    finally:
        gc.unfreeze()
