"""Reasons a shopper can read: one sentence per pick, built from a code and an anchor item."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP
from recsys.models import Reason

_CODES = {r.value: "new_in_category" if r is Reason.NEW_IN_CATEGORY_YOU_BUY else r.name.lower()
          for r in Reason}  # Reason value -> string code
_FIRST = min(_CODES)
_TABLE = np.array([_CODES.get(v, "personalized") for v in range(_FIRST, max(_CODES) + 1)],
                  object)  # Reason value - _FIRST -> string code
_FIXED = {"buy_again": "you buy this regularly", "trending": "trending now",  # same for all
          "popular": "popular with shoppers", "personalized": "picked from your purchase history",
          "goes_with_basket": "goes well with your basket",
          "bought_before": "you bought this before", "looked_at": "you looked at this recently",
          "from_what_you_looked_at": "picked from what you looked at"}


class ReasonWriter:
    """Turns reason codes (and the item that caused them) into short sentences."""

    def __init__(self, products: pd.DataFrame) -> None:
        self.titles = products["title"].fillna("").astype(str).to_numpy()
        self.leaf = products["category"].fillna("").astype(str).str.split(
            CATEGORY_SEP).str[-1].str.lower().to_numpy()

    @staticmethod
    def codes(kinds: np.ndarray) -> np.ndarray:
        """Map ``Reason`` values to string codes (``BUY_AGAIN`` -> "buy_again"; a value
        outside ``Reason``: "personalized"), one table lookup for the whole block."""
        at = np.asarray(kinds, np.int64) - _FIRST
        inside = (at >= 0) & (at < len(_TABLE))
        return np.where(inside, _TABLE[np.where(inside, at, 0)], "personalized")

    def _title(self, item: int) -> str:
        if item < 0:
            return "your past purchases"
        return self.titles[item] or "an item you bought"

    def similar(self, item: int) -> str:
        return f"similar to {self._title(item)}"

    def text(self, code: str, item: int, anchor: int) -> str:
        """The sentence for one pick of ``item`` with reason ``code`` (only that one is
        formatted: batch picks write one per distinct pick)."""
        if code in _FIXED:
            return _FIXED[code]
        leaf = self.leaf[item] if item >= 0 else ""
        if code == "popular_in_category":
            return f"popular in {leaf}" if leaf else _FIXED["popular"]
        if code == "new_in_category":
            return f"new in {leaf}, a category you buy" if leaf else \
                f"new, like {self._title(anchor)}" if anchor >= 0 else "new, like what you buy"
        if code == "repeats_every":  # anchor: the customer's usual days between purchases
            return _every(anchor)
        if code == "because_you_looked":
            return f"because you looked at {self.titles[anchor] or 'an item you viewed'}"
        template = _ANCHORED.get(code)
        return template.format(self._title(anchor)) if template else "recommended for you"


_ANCHORED = {"because_you_bought": "because you bought {}",  # {}: the anchor's title
             "bought_together": "often in the same basket as {}",
             "similar_content": "like {} you bought"}


def _every(days: int) -> str:
    """The "you buy this about every ..." sentence for a usual gap of ``days``."""
    weeks = round(days / 7)
    every = "day" if days <= 1 else f"{days} days" if days < 5 else \
        "week" if weeks <= 1 else f"{weeks} weeks"
    return f"you buy this about every {every}"


__all__ = ["ReasonWriter"]
