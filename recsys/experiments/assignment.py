"""Assignment by hashing: a customer's group is fixed by a salt and their id.

The same customer lands in the same group on every request, in every worker process and
after restarts, with no state to store; a different salt gives an independent split (the A/B
variant and each coupon's holdout are drawn independently of each other).
"""

from __future__ import annotations

import hashlib

HOLDOUT_SALT = "holdout:"


def bucket(unit: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by ``salt`` and ``unit`` (BLAKE2b, 64 bits)."""
    digest = hashlib.blake2b(f"{salt}\x00{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_holdout(customer_id: str, coupon_id: str, share: float) -> bool:
    """Whether the customer is in the coupon's holdout group (eligible, not given it)."""
    return share > 0 and bucket(customer_id, HOLDOUT_SALT + coupon_id) < share


__all__ = ["bucket", "in_holdout", "HOLDOUT_SALT"]
