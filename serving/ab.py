"""A/B routing: a stable share of customers goes to the challenger model.

The bucket is a hash of a salt and the customer id, so a customer sees the same variant on
every request, in every worker and after restarts; changing the salt reshuffles buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.experiments.assignment import bucket  # the one hash (coupon holdouts use it too)
from serving.loader import Served

CHAMPION, CHALLENGER = "champion", "challenger"


def variant_of(customer_id: str | None, share: float, salt: str) -> str:
    """``"challenger"`` for a ``share`` of customers, ``"champion"`` for the rest (and for
    anonymous requests)."""
    if customer_id is None or share <= 0:
        return CHAMPION
    return CHALLENGER if bucket(customer_id, salt) < share else CHAMPION


@dataclass(frozen=True)
class Models:
    """The models live at one moment; a reload replaces the whole object at once."""

    champion: Served
    challenger: Served | None = None
    share: float = 0.0
    salt: str = ""

    def route(self, customer_id: str | None) -> Served:
        """The model that answers this customer."""
        if self.challenger is None:
            return self.champion
        variant = variant_of(customer_id, self.share, self.salt)
        return self.challenger if variant == CHALLENGER else self.champion

    def all(self) -> list[Served]:
        """Every live model (fresh events and erasures go to all of them)."""
        return [self.champion] + ([self.challenger] if self.challenger else [])


__all__ = ["CHAMPION", "CHALLENGER", "bucket", "variant_of", "Models"]
