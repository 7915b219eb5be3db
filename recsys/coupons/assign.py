"""Budget-aware coupon assignment, online (one customer) and in batch (a whole audience).

The problem: choose pairs ``x_ij`` in {0, 1} to maximise ``sum score_ij x_ij`` subject to

- ``x_ij = 0`` unless customer i is eligible for coupon j and ``score_ij > 0``;
- ``sum_j x_ij <= max_per_customer`` and at most one welcome coupon per customer;
- ``sum_i x_ij <= max_issues_j`` (issues of coupon j in this run);
- ``sum_i cost_ij x_ij <= budget_j`` and ``sum_ij cost_ij x_ij <= budget`` (expected cost).

:func:`greedy_select` scans pairs by decreasing key (``score``, or ``score / cost`` with
``order="ratio"``) and takes a pair when every limit still allows it. When is that optimal?

- *Only per-customer caps bind* (budgets and issue caps slack): the feasible sets form a
  partition matroid, on which greedy by weight is optimal (Rado-Edmonds); greedy picks each
  customer's top positive scores.
- *Issue caps bind too*: feasible sets are the intersection of two partition matroids
  (customers, coupons); greedy is a 1/2-approximation (Fisher, Nemhauser & Wolsey 1978): each
  pair of the optimum that greedy misses was blocked by a greedy pair of at least its score,
  and each greedy pair blocks at most two optimal pairs (one per matroid).
- *Budgets bind*: budgets are knapsack constraints. With ``order="ratio"`` and a single
  binding budget, greedy is the fractional-knapsack solution minus the one pair that did not
  fit, so it loses at most ``max score_ij``; when each cost is small next to the budget that
  is negligible. Greedy by score has no such bound (one costly pair can crowd out many).
:func:`assign_optimal` solves the same problem exactly with ``scipy.optimize.milp`` for small
instances (tests compare the two).

Batch scoring is chunked over customers and keeps the best ``candidates_per_customer`` pairs
of each, so memory stays at ``chunk_size x n_coupons``; greedy then runs once over the
candidates of all chunks, so budgets are shared fairly by score across the audience.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, sparse

from recsys.coupons.catalog import Catalog
from recsys.coupons.eligibility import Audience, EligibilityRules, admitting_rule
from recsys.coupons.propensity import prior_propensity
from recsys.coupons.scoring import Economics, economics

Matrix = NDArray[np.floating]
Affinity = Matrix | Callable[[NDArray[np.int64]], Matrix]
Propensity = Callable[[NDArray[np.int64], Matrix], Matrix]
_EPS = 1e-9


@dataclass
class BudgetState:
    """What is left to spend; shared by successive online calls or batch runs (mutable)."""

    coupon_budget: NDArray[np.float64]  # (n_coupons,) expected cost left per coupon
    coupon_issues: NDArray[np.int64]  # (n_coupons,) issues left per coupon
    budget: float  # global expected cost left

    @classmethod
    def from_catalog(cls, catalog: Catalog, econ: Economics | None = None) -> BudgetState:
        econ = econ or economics(catalog)
        return cls(econ.budget.copy(), econ.max_issues.copy(), float(catalog.budget))

    def give_back(self, coupon: int, cost: float) -> None:
        """Return what one issue of ``coupon`` reserved (a pick withheld after choosing)."""
        self.coupon_budget[coupon] += cost
        self.coupon_issues[coupon] += 1
        self.budget += cost


@dataclass(frozen=True)
class Assignment:
    """Chosen pairs, one entry per coupon given (arrays of equal length k).

    ``customer_idx`` indexes the audience, ``coupon_idx`` the catalog; ``affinity`` is the
    share of the customer's spend on the coupon's target; ``rule``/``reason`` explain it.
    """

    customer_idx: NDArray[np.int64]
    coupon_idx: NDArray[np.int64]
    score: NDArray[np.float64]
    p_redeem: NDArray[np.float64]
    expected_cost: NDArray[np.float64]
    affinity: NDArray[np.float64]
    rule: list[str]
    reason: list[str]

    def __len__(self) -> int:
        return len(self.customer_idx)

    def to_frame(self, catalog: Catalog, audience: Audience) -> pd.DataFrame:
        """People-facing table: ``customer_id, coupon_id, score, p_redeem, expected_cost,
        rule, reason`` (one row per coupon given)."""
        return pd.DataFrame({
            "customer_id": audience.customer_ids[self.customer_idx],
            "coupon_id": np.asarray(catalog.ids, dtype=object)[self.coupon_idx],
            "score": self.score, "p_redeem": self.p_redeem,
            "expected_cost": self.expected_cost, "rule": self.rule, "reason": self.reason})


def greedy_select(customer: NDArray[np.int64], coupon: NDArray[np.int64],
                  key: NDArray[np.float64], cost: NDArray[np.float64],
                  welcome: NDArray[np.bool_], state: BudgetState, max_per_customer: int,
                  n_customers: int) -> NDArray[np.int64]:
    """Greedy over candidate pairs (module docstring); charges ``state`` in place.

    Parameters
    ----------
    customer, coupon : ndarray of int64, shape (k,)
    key : ndarray of float64, shape (k,)
        Scan order, largest first (ties keep the input order).
    cost : ndarray of float64, shape (k,)
        Expected cost charged to the coupon's and the global budget.
    welcome : ndarray of bool, shape (n_coupons,)
    state : BudgetState
    max_per_customer : int
    n_customers : int

    Returns
    -------
    ndarray of int64
        Positions of the chosen candidates, in the order they were taken.
    """
    order = np.argsort(-key, kind="stable")
    left = [max_per_customer] * n_customers
    got_welcome = [False] * n_customers
    issues, budgets = state.coupon_issues.tolist(), state.coupon_budget.tolist()
    is_welcome = welcome.tolist()
    total = state.budget
    cheapest = float(cost.min()) if len(cost) else 0.0
    chosen = []
    for t, i, j, c in zip(order.tolist(), customer[order].tolist(), coupon[order].tolist(),
                          cost[order].tolist(), strict=True):
        if left[i] == 0 or issues[j] == 0 or c > budgets[j] + _EPS or c > total + _EPS:
            if total < cheapest - _EPS:
                break  # nothing fits any more
            continue
        if is_welcome[j]:
            if got_welcome[i]:
                continue
            got_welcome[i] = True
        left[i] -= 1
        issues[j] -= 1
        budgets[j] -= c
        total -= c
        chosen.append(t)
    state.coupon_issues[:] = issues
    state.coupon_budget[:] = budgets
    state.budget = total
    return np.asarray(chosen, dtype=np.int64)


class CouponAssigner:
    """Scores, filters and assigns a catalog's coupons.

    Parameters
    ----------
    catalog : Catalog
    propensity : callable, optional
        ``propensity(rows, affinity) -> (len(rows), n_coupons)`` P(redeem), e.g. a trained
        :class:`~recsys.coupons.propensity.RedemptionModel` over offer features. Default:
        the catalog's prior (:func:`~recsys.coupons.propensity.prior_propensity`).
    order : {"score", "ratio"}
        Greedy scan order (module docstring).
    reason_min_share : float
        Spend share from which the reason quotes it ("34% of your spend is in dairy").
    """

    def __init__(self, catalog: Catalog, *, propensity: Propensity | None = None,
                 order: Literal["score", "ratio"] = "score",
                 reason_min_share: float = 0.05) -> None:
        self.catalog = catalog
        self.propensity = propensity
        self.order = order
        self.reason_min_share = reason_min_share
        self.econ = economics(catalog)
        self.rules = EligibilityRules(catalog)
        self.min_basket = np.array([c.min_basket for c in catalog.coupons])
        self.labels = [c.target.label().lower() for c in catalog.coupons]  # "in meat"
        self.sitewide = np.array([c.target.sitewide for c in catalog.coupons])

    # -- scoring ----------------------------------------------------------------------------
    def score(self, audience: Audience, rows: NDArray[np.int64], affinity: Matrix, at: dt.date,
              p_redeem: Matrix | None = None,
              **history: sparse.spmatrix | NDArray[np.bool_] | None
              ) -> tuple[Matrix, Matrix, Matrix]:
        """``(score, expected_cost, p_redeem)``, each ``(len(rows), n_coupons)`` float64, for
        audience ``rows``; ineligible or non-positive pairs score ``-inf``. ``history``
        takes ``issued``/``redeemed``/``welcome_received`` already restricted to ``rows``;
        ``p_redeem`` (same rows), when given, replaces the assigner's propensity."""
        sub = audience.take(rows)
        mask = self.rules.mask(sub, at, **history)  # type: ignore[arg-type]
        if p_redeem is not None:
            p = np.array(p_redeem, dtype=np.float64).reshape(len(rows), -1)
        elif self.propensity is None:
            p = prior_propensity(affinity, sub.stage, self.catalog.prior,
                                 min_basket=self.min_basket, avg_basket=sub.avg_basket)
        else:
            p = np.asarray(self.propensity(rows, affinity), dtype=np.float64)
        score, cost = self.econ.expected_value(p)
        score[~mask | (score <= 0)] = -np.inf
        return score, cost, p

    def _cap(self, limit: int | None) -> int:
        cap = self.catalog.max_per_customer
        return cap if limit is None else max(0, min(cap, limit))

    def _key(self, score: Matrix, cost: Matrix) -> Matrix:
        return score / np.maximum(cost, _EPS) if self.order == "ratio" else score

    # -- online -----------------------------------------------------------------------------
    def assign_one(self, audience: Audience, affinity: Matrix, at: dt.date,
                   state: BudgetState, *, limit: int | None = None,
                   p_redeem: Matrix | None = None,
                   **history: sparse.spmatrix | NDArray[np.bool_] | None) -> Assignment:
        """Coupons for one customer now, charged to ``state``.

        Parameters
        ----------
        audience : Audience with one row
        affinity : ndarray, shape (1, n_coupons) or (n_coupons,)
        at : date
        state : BudgetState
            Remaining budgets, updated in place.
        limit : int, optional
            At most this many coupons (and never more than the catalog's
            ``max_per_customer``).
        p_redeem : ndarray, shape (1, n_coupons) or (n_coupons,), optional
            P(redeem) to use instead of the assigner's propensity.
        **history
            ``issued``/``redeemed`` (1, n_coupons) sparse, ``welcome_received`` (1,) bool.
        """
        if len(audience) != 1:
            raise ValueError("assign_one takes an Audience of exactly one customer; "
                             "use assign_batch for more.")
        aff = np.asarray(affinity, dtype=np.float64).reshape(1, -1)
        rows = np.zeros(1, np.int64)
        score, cost, p = self.score(audience, rows, aff, at, p_redeem, **history)
        cand = np.flatnonzero(np.isfinite(score[0]))
        chosen = cand[greedy_select(np.zeros(len(cand), np.int64), cand,
                                    self._key(score, cost)[0, cand], cost[0, cand],
                                    self.rules.welcome, state, self._cap(limit), 1)]
        return self._explain(audience, rows[np.zeros(len(chosen), np.int64)], chosen,
                             score[0, chosen], p[0, chosen], cost[0, chosen], aff[0, chosen])

    # -- batch ------------------------------------------------------------------------------
    def assign_batch(self, audience: Audience, affinity: Affinity, at: dt.date, *,
                     state: BudgetState | None = None,
                     issued: sparse.spmatrix | None = None,
                     redeemed: sparse.spmatrix | None = None,
                     welcome_received: NDArray[np.bool_] | None = None,
                     chunk_size: int = 20_000, candidates_per_customer: int | None = None,
                     limit: int | None = None, p_redeem: Matrix | None = None) -> Assignment:
        """Coupons for a whole audience under shared budgets.

        Parameters
        ----------
        audience : Audience, n rows
        affinity : ndarray of shape (n, n_coupons), or callable ``rows -> (len(rows),
            n_coupons)`` (e.g. ``scoring.target_share`` over a spend matrix) so that only one
            chunk is in memory.
        at : date
        state : BudgetState, optional
            Remaining budgets (default: the catalog's full budgets); updated in place.
        issued, redeemed : sparse (n, n_coupons), optional
        welcome_received : ndarray of bool, shape (n,), optional
        chunk_size : int
            Customers scored at once.
        candidates_per_customer : int, optional
            Best pairs per customer kept for the global greedy (default
            ``max(4 x max_per_customer, 10)``, at most all coupons); more only matters when
            many coupons run out of budget.
        limit : int, optional
            At most this many coupons per customer (never more than ``max_per_customer``);
            budget is only spent on coupons given.
        p_redeem : ndarray, shape (n, n_coupons), optional
            P(redeem) to use instead of the assigner's propensity.

        Returns
        -------
        Assignment
        """
        n, m = len(audience), len(self.catalog.coupons)
        state = state or BudgetState.from_catalog(self.catalog, self.econ)
        cap = self._cap(limit)
        k = min(m, candidates_per_customer or max(4 * cap, 10))
        parts: list[tuple[NDArray[np.int64], ...]] = []
        for lo in range(0, n, chunk_size):
            rows = np.arange(lo, min(lo + chunk_size, n), dtype=np.int64)
            aff = affinity(rows) if callable(affinity) else np.asarray(affinity)[rows]
            aff = np.asarray(aff, dtype=np.float64)
            score, cost, p = self.score(
                audience, rows, aff, at, None if p_redeem is None else p_redeem[rows],
                issued=None if issued is None else issued[rows],
                redeemed=None if redeemed is None else redeemed[rows],
                welcome_received=None if welcome_received is None else welcome_received[rows])
            key = self._key(score, cost)
            top = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < m else \
                np.broadcast_to(np.arange(m), (len(rows), m))
            r = np.repeat(np.arange(len(rows)), top.shape[1])
            c = top.ravel()
            ok = np.isfinite(key[r, c])
            r, c = r[ok], c[ok]
            parts.append((rows[r], c, key[r, c], score[r, c], cost[r, c], p[r, c], aff[r, c]))
        cols = [np.concatenate([part[i] for part in parts]) if parts else np.zeros(0)
                for i in range(7)]
        cust, coup = cols[0].astype(np.int64), cols[1].astype(np.int64)
        chosen = greedy_select(cust, coup, cols[2], cols[4], self.rules.welcome, state,
                               cap, n)
        return self._explain(audience, cust[chosen], coup[chosen], cols[3][chosen],
                             cols[5][chosen], cols[4][chosen], cols[6][chosen])

    # -- explanations -----------------------------------------------------------------------
    def _reason(self, j: int, share: float) -> str:
        label = self.labels[j]
        if self.sitewide[j]:
            return _WHOLE_BASKET[self.catalog.coupons[j].kind]
        if share >= self.reason_min_share:
            return f"{share:.0%} of your spend is in {label}"
        if share > 0:
            return f"you already buy {label}"
        return f"an offer on {label} to try"

    def _explain(self, audience: Audience, rows: NDArray[np.int64], cols: NDArray[np.int64],
                 score: Matrix, p: Matrix, cost: Matrix, aff: Matrix) -> Assignment:
        coupons = self.catalog.coupons
        rule = [admitting_rule(coupons[j], audience.stage[i], audience.segment[i],
                               audience.tier[i]) for i, j in zip(rows.tolist(), cols.tolist(),
                                                                 strict=True)]
        reason = [self._reason(j, s) for j, s in zip(cols.tolist(), aff.tolist(), strict=True)]
        f64 = np.float64
        return Assignment(rows.astype(np.int64), cols.astype(np.int64), score.astype(f64),
                          p.astype(f64), cost.astype(f64), aff.astype(f64), rule, reason)


_WHOLE_BASKET = {"percent_off": "a discount on your whole basket",  # sitewide, by kind
                 "amount_off": "money off your whole basket",
                 "free_shipping": "free delivery on your next order",
                 "points_multiplier": "extra points on your whole basket",
                 "buy_x_get_y": "a free item with your next basket"}


def assign_optimal(score: Matrix, cost: Matrix, *, max_per_customer: int,
                   welcome: NDArray[np.bool_], state: BudgetState,
                   time_limit: float = 30.0) -> NDArray[np.bool_]:
    """The exact optimum of the module's problem by ``scipy.optimize.milp`` (small inputs).

    Parameters
    ----------
    score, cost : ndarray, shape (n, n_coupons)
        ``score`` is ``-inf`` for ineligible pairs (as :meth:`CouponAssigner.score` gives).
    max_per_customer : int
    welcome : ndarray of bool, shape (n_coupons,)
    state : BudgetState
        Limits (not modified).

    Returns
    -------
    ndarray of bool, shape (n, n_coupons)
    """
    n, m = score.shape
    r, c = np.nonzero(np.isfinite(score) & (score > 0))
    k = len(r)
    x = np.zeros((n, m), bool)
    if k == 0:
        return x
    pair = np.arange(k)
    w = cost[r, c]
    blocks = [
        (sparse.csr_matrix((np.ones(k), (r, pair)), shape=(n, k)), max_per_customer),
        (sparse.csr_matrix((welcome[c].astype(float), (r, pair)), shape=(n, k)), 1),
        (sparse.csr_matrix((np.ones(k), (c, pair)), shape=(m, k)),
         np.minimum(state.coupon_issues, k).astype(float)),
        (sparse.csr_matrix((w, (c, pair)), shape=(m, k)), state.coupon_budget),
        (sparse.csr_matrix(w[None, :]), state.budget),
    ]
    cons = [optimize.LinearConstraint(a, -np.inf, ub) for a, ub in blocks]
    res = optimize.milp(-score[r, c], constraints=cons, integrality=np.ones(k),
                        bounds=optimize.Bounds(0, 1), options={"time_limit": time_limit})
    if res.x is None:
        raise RuntimeError(f"milp found no solution: {res.message}")
    take = res.x > 0.5
    x[r[take], c[take]] = True
    return x


__all__ = ["BudgetState", "Assignment", "greedy_select", "CouponAssigner", "assign_optimal"]
