"""Business filters as item masks: availability, category, price (shared by API and batch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.features import in_stock
from recsys.data.schema import CATEGORY_SEP


class ItemFilters:
    """Precomputed per-item arrays that turn request filters into boolean masks."""

    def __init__(self, products: pd.DataFrame) -> None:
        self.category = products["category"].fillna("").astype(str).str.upper().to_numpy()
        self._category_masks: dict[str, np.ndarray] = {}
        self.price = products["price"].to_numpy(dtype=np.float64)
        self.available = in_stock(products)

    def mask(self, *, category: str | None = None, min_price: float | None = None,
             max_price: float | None = None) -> np.ndarray:
        """Items that are in stock and match the category prefix and the price range.

        ``category`` matches a whole path prefix ("GROCERY" matches "GROCERY > SOUP", not
        "GROCERY2"), case-insensitively.
        """
        keep = self.available.copy()
        if category:
            keep &= self._category_mask(category.strip().upper())
        if min_price is not None:
            keep &= self.price >= min_price
        if max_price is not None:
            keep &= self.price <= max_price
        return keep

    def _category_mask(self, want: str) -> np.ndarray:
        if want not in self._category_masks:
            if len(self._category_masks) > 1024:  # bound the cache against junk categories
                self._category_masks.clear()
            cats = self.category.astype(str)
            self._category_masks[want] = (cats == want) | np.char.startswith(
                cats, want + CATEGORY_SEP)
        return self._category_masks[want]


__all__ = ["ItemFilters"]
