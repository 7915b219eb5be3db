"""Coupon choice for the API and batch picks: the bundle catalog, one customer state, one rule set.

A customer's affinity to a coupon is the share of their (history-weighted) spend that falls on
the coupon's target. Customers who are unknown, erased or opted out of personalization are
scored as a stranger (stage ``prospect``, no affinity); those erased or opted out see only
sitewide offers open to everyone, nothing targeted (no welcome or stage offer either).
Missing consent to marketing removes every coupon (hard rule).

The API quotes coupons against the catalog's full budgets (a page view does not spend budget);
batch runs share one :class:`~recsys.coupons.assign.BudgetState` across the whole audience.

P(redeem) comes from the bundle's trained redemption model when it has one
(:mod:`recsys.coupons.served`; features from the customer's history, profile and redemptions,
including those folded in online), for coupons with product or category targets; sitewide
coupons, and every coupon of a bundle without a trained model, use the catalog's prior. The
reasons are the shopper's (spend share, target), the same whichever source gave the chance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml
from scipy import sparse

from recsys.bundle import Bundle
from recsys.coupons.assign import Assignment, BudgetState, CouponAssigner
from recsys.coupons.catalog import Catalog, parse_catalog
from recsys.coupons.eligibility import Audience
from recsys.coupons.propensity import prior_propensity
from recsys.coupons.scoring import coupon_products, target_share
from recsys.coupons.served import ServedFeatures
from recsys.errors import BundleError, ConfigError
from recsys.experiments.assignment import in_holdout

STRANGER_STAGE = "prospect"


@dataclass(frozen=True)
class CouponPick:
    """One coupon offered to a customer, with the rule that admits it and why it was chosen."""

    coupon_id: str
    kind: str
    value: float | None  # None for kinds without an amount (free shipping)
    score: float
    p_redeem: float
    rule: str
    reason: str
    held_out: bool = False  # chosen, but the customer is in the coupon's holdout group


def _audience_frame(customers: pd.DataFrame) -> pd.DataFrame:
    """Bundle customer table -> the columns ``Audience.from_frame`` reads."""
    frame = customers.copy()
    if "avg_basket" not in frame and {"monetary", "frequency"} <= set(frame):
        orders = frame["frequency"].where(frame["frequency"] > 0)
        frame["avg_basket"] = frame["monetary"] / orders
    if "consent_marketing" not in frame:
        frame["consent_marketing"] = True
    return frame


class CouponChooser:
    """Scores and assigns the bundle's coupon catalog for customers of that bundle."""

    def __init__(self, bundle: Bundle, catalog: Catalog) -> None:
        self.catalog = catalog
        self.assigner = CouponAssigner(catalog)
        self.customers = bundle.customer_map
        self.audience = Audience.from_frame(_audience_frame(bundle.customers))
        products = bundle.products
        targets = coupon_products(catalog, products["product_id"].to_numpy(dtype=object),
                                  products["category"].astype(str).to_numpy(dtype=object))
        self._targets = targets
        self._price = products["price"].fillna(0.0).to_numpy(np.float64).clip(min=0.0)
        self._sitewide = self.assigner.sitewide
        # Coupons a customer without personalization consent may still get: sitewide, for
        # everyone (no segment, stage or tier list), not a birthday offer.
        self._generic = self._sitewide & np.array(
            [c.eligible.segments is None and c.eligible.stages is None and
             c.eligible.tiers is None and c.purpose != "birthday" for c in catalog.coupons],
            bool)
        self._coupon_index = {cid: j for j, cid in enumerate(catalog.ids)}
        self._holdout = {c.id: c.holdout_share for c in catalog.coupons if c.holdout_share}
        self.trained = bundle.coupon_propensity
        if self.trained is not None:
            self._features = ServedFeatures(
                products["product_id"].to_numpy(dtype=object),
                products["category"].astype(str).to_numpy(dtype=object), targets,
                self._sitewide, sparse.csr_matrix(bundle.history.multiply(self._price[None, :])))
            frame = bundle.customers
            self._redemptions = frame["coupon_redemptions"].to_numpy(np.float64) \
                if "coupon_redemptions" in frame else np.zeros(len(frame))
            self._recency = frame["recency_days"].to_numpy(np.float64) \
                if "recency_days" in frame else np.full(len(frame), np.nan)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> CouponChooser | None:
        """The chooser for a bundle with a ``coupons.yaml``; None without one."""
        if not bundle.coupons_yaml:
            return None
        try:
            raw = yaml.safe_load(bundle.coupons_yaml)
            # Expired coupons are not an error here: eligibility filters them by date.
            catalog = parse_catalog(raw, known_products=bundle.products["product_id"],
                                    today=dt.date.min, source="bundle coupons.yaml")
        except (yaml.YAMLError, ConfigError) as exc:
            raise BundleError(f"the bundle's coupon catalog is invalid: {exc}") from exc
        return cls(bundle, catalog)

    def budget(self) -> BudgetState:
        """A fresh budget (the catalog's full amounts) for one batch run."""
        return BudgetState.from_catalog(self.catalog, self.assigner.econ)

    def choose(self, customer_ids: Sequence[str], history: sparse.csr_matrix,
               personal: np.ndarray, n: int, *, redeemed: Sequence[set[str]] | None = None,
               at: dt.date | None = None, state: BudgetState | None = None,
               held_out: bool = False) -> list[list[CouponPick]]:
        """Up to ``n`` coupons per customer, best first.

        ``history`` holds the customers' product weights (rows in ``customer_ids`` order),
        ``personal`` whether each may be targeted on their data, ``redeemed`` the coupon ids
        each has already redeemed. Without ``state`` every customer is quoted against the
        full budgets (the online case); with it, budgets are shared and spent. A pick whose
        coupon holds this customer out (``holdout_share``) is dropped, or with ``held_out``
        kept and marked so the caller can log it.
        """
        at = at or dt.date.today()
        rows_of = self.customers.to_index(list(customer_ids), missing="mark")
        audience = self._audience(rows_of, personal)
        spend = self._spend(history, personal)
        affinity = target_share(spend, self._targets, self._sitewide)
        used = self._redeemed_matrix(redeemed, len(customer_ids))
        if not personal.all():  # no targeted coupon without consent: mark them as used
            used = sparse.csr_matrix(used + sparse.csr_matrix(
                ~personal[:, None] & ~self._generic[None, :], dtype=np.float32))
        p = None if self.trained is None else \
            self._p_redeem(rows_of, personal, spend, audience, affinity, redeemed)
        if state is None:
            picks = [self.assigner.assign_one(
                audience.take(np.array([r])), affinity[r], at, self.budget(), limit=n,
                redeemed=used if len(customer_ids) == 1 else used[r],
                p_redeem=None if p is None else p[r])
                for r in range(len(customer_ids))]
            rows = [(np.zeros(len(a), np.int64) + r, a) for r, a in enumerate(picks)]
        else:
            a = self.assigner.assign_batch(audience, affinity, at, state=state, redeemed=used,
                                           limit=n, p_redeem=p)
            rows = [(a.customer_idx, a)]
        return self._picks(customer_ids, rows, state, held_out)

    def _picks(self, customer_ids: Sequence[str], rows: list[tuple[np.ndarray, Assignment]],
               state: BudgetState | None, held_out: bool) -> list[list[CouponPick]]:
        """The assignments as each customer's picks, best first; a pick whose coupon holds
        the customer out gives back the budget it reserved, and is kept only ``held_out``."""
        out: list[list[tuple[float, CouponPick]]] = [[] for _ in customer_ids]
        coupons = self.catalog.coupons
        for customer_idx, a in rows:
            for k, (i, j) in enumerate(zip(customer_idx.tolist(), a.coupon_idx.tolist(),
                                           strict=True)):
                c = coupons[j]
                held = c.id in self._holdout and in_holdout(customer_ids[i], c.id,
                                                            self._holdout[c.id])
                if held and state is not None:  # withheld: give back what it reserved
                    state.give_back(j, float(a.expected_cost[k]))
                if held and not held_out:
                    continue
                value = None if c.value is None else float(c.value)
                out[i].append((float(a.score[k]), CouponPick(
                    c.id, c.kind, value, float(a.score[k]), float(a.p_redeem[k]), a.rule[k],
                    a.reason[k], held)))
        return [[p for _, p in sorted(row, key=lambda t: -t[0])] for row in out]

    def _spend(self, history: sparse.csr_matrix, personal: np.ndarray) -> sparse.csr_matrix:
        """Spend on each product, zero for customers who may not be targeted."""
        spend = sparse.csr_matrix(history.multiply(self._price[None, :]))
        return sparse.diags(personal.astype(np.float64)) @ spend

    def _p_redeem(self, rows: np.ndarray, personal: np.ndarray,
                  spend: sparse.csr_matrix, audience: Audience, affinity: np.ndarray,
                  redeemed: Sequence[set[str]] | None) -> np.ndarray:
        """P(redeem) ``(n, n_coupons)``: the trained model, the prior for sitewide coupons.
        Strangers (unknown, opted out) get no profile or past redemptions from the bundle."""
        assert self.trained is not None
        known = (rows >= 0) & personal
        at = np.clip(rows, 0, None)
        online = np.array([len(r) for r in redeemed] if redeemed else np.zeros(len(rows)),
                          np.float64)
        X = self._features(
            spend, past_redemptions=np.where(known, self._redemptions[at], 0.0) + online,
            recency_days=np.where(known, self._recency[at], np.nan),
            avg_basket=audience.avg_basket, columns=self.trained.features)
        p = self.trained.probability(X).reshape(len(rows), -1)
        if self._sitewide.any():
            prior = prior_propensity(affinity[:, self._sitewide], audience.stage,
                                     self.catalog.prior,
                                     min_basket=self.assigner.min_basket[self._sitewide],
                                     avg_basket=audience.avg_basket)
            p[:, self._sitewide] = prior
        return p

    def _audience(self, rows: np.ndarray, personal: np.ndarray) -> Audience:
        """Audience rows for bundle customer indices ``rows`` (-1 = unknown)."""
        known = (rows >= 0) & personal
        sub = self.audience.take(np.clip(rows, 0, None))
        stranger = {"stage": STRANGER_STAGE, "segment": "", "tier": "", "birth_month": 0,
                    "avg_basket": np.nan}
        for field, value in stranger.items():
            getattr(sub, field)[~known] = value
        # Marketing consent is the customer's own choice, kept even when they are a stranger
        # to the model; an id the bundle never saw has given none we know of, so offers shown
        # on the storefront to them are the generic ones admitted by the rules.
        sub.consent_marketing[rows < 0] = True
        return sub

    def _redeemed_matrix(self, redeemed: Sequence[set[str]] | None, n: int
                         ) -> sparse.csr_matrix:
        m = len(self.catalog.coupons)
        if not redeemed:
            return sparse.csr_matrix((n, m), dtype=np.float32)
        pairs = [(r, self._coupon_index[c]) for r, used in enumerate(redeemed) for c in used
                 if c in self._coupon_index]
        r, c = (np.array(x) for x in zip(*pairs, strict=True)) if pairs else ([], [])
        return sparse.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, m))


__all__ = ["CouponPick", "CouponChooser"]
