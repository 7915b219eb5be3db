"""Hard eligibility: who may receive which coupon, as a customers x coupons boolean mask.

Rules (all must hold, DOMAIN.md "eligibility first, then value"):

1. the coupon's validity window contains the decision date;
2. the customer's segment, lifecycle stage and tier are in the coupon's lists (if any);
3. fewer issues of this coupon to this customer so far than its ``per_customer_cap``;
4. the customer consents to marketing;
5. the customer has not already redeemed it;
6. anti-abuse: a customer who ever received a welcome coupon gets no other (assignment also
   gives at most one welcome coupon per run);
7. birthday coupons only in the customer's birth month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from recsys.coupons.catalog import Catalog, Coupon

PURPOSE_TEXT = {
    "welcome": "welcome offer", "second_purchase": "second-purchase offer",
    "tier_nudge": "tier-upgrade nudge", "retention": "retention offer",
    "win_back": "win-back offer", "birthday": "birthday offer", "cross_sell": "cross-sell offer",
    "perk": "member perk",
}


@dataclass(frozen=True)
class Audience:
    """Customer state for coupon decisions; every field is an array of length ``n``.

    ``stage``/``segment``/``tier`` are str (``""`` when unknown), ``birth_month`` int8 (0 when
    unknown), ``avg_basket`` float64 (NaN when unknown). No names or contact data.
    """

    customer_ids: NDArray[np.object_]
    stage: NDArray[np.object_]
    segment: NDArray[np.object_]
    tier: NDArray[np.object_]
    consent_marketing: NDArray[np.bool_]
    birth_month: NDArray[np.int8]
    avg_basket: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.customer_ids)
        bad = [f.name for f in fields(self) if len(getattr(self, f.name)) != n]
        if bad:
            raise ValueError(f"Audience fields {bad} must have {n} rows like customer_ids.")

    def __len__(self) -> int:
        return len(self.customer_ids)

    def take(self, rows: slice | NDArray[np.integer]) -> Audience:
        """The audience restricted to ``rows`` (a slice or index array)."""
        return Audience(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Audience:
        """From a frame with ``customer_id`` and any of ``stage, segment, tier,
        consent_marketing, birth_month, avg_basket`` (missing ones get the unknown value;
        missing consent means no consent)."""
        n = len(frame)

        def col(name: str, default: object, dtype: object) -> np.ndarray:
            if name not in frame:
                return np.full(n, default, dtype=dtype)
            s = frame[name]
            return s.fillna(default).to_numpy().astype(dtype)

        return cls(customer_ids=frame["customer_id"].astype(str).to_numpy().astype(object),
                   stage=col("stage", "", object), segment=col("segment", "", object),
                   tier=col("tier", "", object),
                   consent_marketing=col("consent_marketing", False, bool),
                   birth_month=col("birth_month", 0, np.int8),
                   avg_basket=col("avg_basket", np.nan, np.float64))


class EligibilityRules:
    """The catalog's hard rules compiled to arrays, reusable across chunks and requests.

    Parameters
    ----------
    catalog : Catalog
    """

    def __init__(self, catalog: Catalog) -> None:
        coupons = catalog.coupons
        self.n_coupons = len(coupons)
        self.valid_from = np.array([c.valid_from for c in coupons], dtype="datetime64[D]")
        self.valid_to = np.array([c.valid_to for c in coupons], dtype="datetime64[D]")
        self.cap = np.array([c.per_customer_cap for c in coupons], np.int64)
        self.welcome = np.array([c.purpose == "welcome" for c in coupons], bool)
        self.birthday = np.array([c.purpose == "birthday" for c in coupons], bool)
        self._lists = {attr: [getattr(c.eligible, key) for c in coupons]
                       for attr, key in (("segment", "segments"), ("stage", "stages"),
                                         ("tier", "tiers"))}
        self._cache: dict[str, dict[str, NDArray[np.bool_]]] = {a: {} for a in self._lists}

    def _column(self, attr: str, value: str) -> NDArray[np.bool_]:
        """``(n_coupons,)``: which coupons admit ``value`` of ``attr`` (cached)."""
        col = self._cache[attr].get(value)
        if col is None:
            col = np.array([lst is None or value in lst for lst in self._lists[attr]], bool)
            self._cache[attr][value] = col
        return col

    def mask(self, audience: Audience, at: dt.date, *,
             issued: sparse.spmatrix | None = None, redeemed: sparse.spmatrix | None = None,
             welcome_received: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
        """See :func:`eligibility`."""
        n, m = len(audience), self.n_coupons
        day = np.datetime64(at, "D")
        window = (self.valid_from <= day) & (day <= self.valid_to)
        mask = window[None, :] & audience.consent_marketing[:, None]
        for attr, lists in self._lists.items():
            if all(lst is None for lst in lists):
                continue
            values = getattr(audience, attr)
            if n == 1:
                mask &= self._column(attr, str(values[0]))[None, :]
                continue
            uniq, inv = np.unique(values.astype(str), return_inverse=True)
            table = np.stack([self._column(attr, u) for u in uniq]) if len(uniq) else \
                np.zeros((0, m), bool)
            mask &= table[inv]
        if self.birthday.any():
            mask[:, self.birthday] &= (audience.birth_month == at.month)[:, None]
        got_welcome = np.zeros(n, bool) if welcome_received is None else \
            np.asarray(welcome_received, bool).copy()
        if issued is not None:
            _check_shape("issued", issued, (n, m))
            counts = np.asarray(issued.todense())
            mask &= counts < self.cap
            got_welcome |= (counts[:, self.welcome] > 0).any(axis=1)
        if self.welcome.any():
            mask[:, self.welcome] &= ~got_welcome[:, None]
        if redeemed is not None:
            _check_shape("redeemed", redeemed, (n, m))
            mask &= ~np.asarray(redeemed.todense(), dtype=bool)
        return mask


def eligibility(catalog: Catalog, audience: Audience, at: dt.date, *,
                issued: sparse.spmatrix | None = None, redeemed: sparse.spmatrix | None = None,
                welcome_received: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """Which customer may receive which coupon at date ``at`` (rules in the module docstring).

    Parameters
    ----------
    catalog : Catalog
    audience : Audience, n rows
    at : date
    issued : sparse matrix of int, shape (n, n_coupons), optional
        How many times each coupon was already issued to each customer (catalog order).
    redeemed : sparse matrix of bool, shape (n, n_coupons), optional
        Coupons each customer already redeemed.
    welcome_received : ndarray of bool, shape (n,), optional
        Customers who got a welcome coupon outside this catalog (older campaigns).

    Returns
    -------
    ndarray of bool, shape (n, n_coupons)
    """
    return EligibilityRules(catalog).mask(audience, at, issued=issued, redeemed=redeemed,
                                          welcome_received=welcome_received)


def _check_shape(name: str, matrix: sparse.spmatrix, shape: tuple[int, int]) -> None:
    if matrix.shape != shape:
        raise ValueError(f"{name} must have shape (customers, coupons) = {shape}, "
                         f"not {matrix.shape}.")


def admitting_rule(coupon: Coupon, stage: str = "", segment: str = "", tier: str = "") -> str:
    """The eligibility rule that admitted a customer, as a sentence fragment.

    A win-back coupon restricted to stages ``(at_risk, churned)`` given to an ``at_risk``
    customer reads ``"win-back offer for at_risk customers"``.
    """
    text = PURPOSE_TEXT[coupon.purpose]
    e = coupon.eligible
    who = []
    if e.stages is not None:
        who.append(f"{stage} customers")
    if e.segments is not None:
        who.append(f"the {segment} segment")
    if e.tiers is not None:
        who.append(f"{tier} tier members")
    if coupon.purpose == "birthday":
        who.append("customers in their birthday month")
    return f"{text} for {' in '.join(who) if who else 'all customers'}"


__all__ = ["PURPOSE_TEXT", "Audience", "EligibilityRules", "eligibility", "admitting_rule"]
