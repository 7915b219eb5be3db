"""The synthetic retailer's customers: segments, category affinities, visit rates, lifetimes.

Part of ``recsys.data.synthetic``. A segment sets a customer's category tastes, price
sensitivity, visit rate (heavy-tailed around the segment's median), basket size, how much of a
basket are staples, online share and coupon proneness; each customer draws their own affinity
vector from a Dirichlet centred on the segment's. Some customers join during the period and
some churn (stop buying).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.data.synthetic_catalog import CATEGORY_INDEX, VOCAB


@dataclass(frozen=True)
class Segment:
    """A kind of shopper; the numbers are medians that customers scatter around."""

    name: str
    share: float
    visits: float          # orders per year, before scaling to the requested line count
    basket: float          # mean lines per order
    repeat: float          # share of lines drawn from the customer's staples
    staples: float         # mean number of staple products
    online: float          # share of orders online
    price_beta: float      # within-category weight ~ relative_price ** -beta
    coupon: float          # multiplier of the redemption probability
    boosts: dict[str, float] = field(default_factory=dict)  # department or category -> factor


SEGMENTS: tuple[Segment, ...] = (
    Segment("family", 0.24, 40, 6.5, 0.75, 9, 0.10, 0.5, 1.0,
            {"BABY": 8, "DAIRY": 1.8, "SNACKS": 1.6, "CEREAL": 2.5, "PIZZA": 1.8, "JUICE": 2}),
    Segment("bargain", 0.20, 30, 5.0, 0.75, 7, 0.05, 2.5, 2.0,
            {"PANTRY": 1.8, "CANNED GOODS": 2, "PASTA": 2, "FROZEN": 1.4, "SEAFOOD": 0.3,
             "BEER AND WINE": 0.5}),
    Segment("gourmet", 0.10, 25, 4.5, 0.6, 6, 0.15, -1.5, 0.6,
            {"SEAFOOD": 5, "CHEESE": 3, "BEER AND WINE": 3, "COFFEE": 2.5, "HERBS": 3,
             "MEAT": 1.5, "CANNED GOODS": 0.4, "FROZEN": 0.4}),
    Segment("health", 0.12, 32, 5.0, 0.7, 7, 0.10, -0.5, 0.8,
            {"PRODUCE": 3, "YOGURT": 2.5, "TEA": 3, "RICE AND GRAINS": 2.5, "NUTS": 3,
             "CANDY": 0.2, "CHIPS": 0.3, "SODA": 0.2, "FROZEN MEALS": 0.4}),
    Segment("convenience", 0.16, 36, 3.5, 0.7, 5, 0.35, 0.0, 0.8,
            {"FROZEN": 3, "SNACKS": 2, "SODA": 2.5, "DELI MEAT": 2, "BEER AND WINE": 1.5,
             "PRODUCE": 0.4, "BAKING": 0.2}),
    Segment("occasional", 0.18, 6, 4.0, 0.5, 3, 0.10, 0.5, 1.2, {}),
)
PETS = (("none", 0.65, None), ("dog", 0.20, "DOG"), ("cat", 0.15, "CAT"))
AFFINITY_CONCENTRATION = 40.0  # Dirichlet total; lower = customers differ more from segment
_AGE = np.array(["18-24", "25-34", "35-44", "45-54", "55-64", "65+"], dtype=object)
_AGE_P = {"family": [0.02, 0.3, 0.45, 0.18, 0.04, 0.01], "gourmet": [0.02, 0.15, 0.25, 0.3,
          0.18, 0.1], "occasional": [0.25, 0.3, 0.15, 0.1, 0.1, 0.1]}


def segment_weights(categories_used: np.ndarray) -> np.ndarray:
    """Centre of each (segment, pet) affinity, shape ``(n_segments, n_pets, len(VOCAB))``.

    Categories absent from the catalog (``categories_used`` holds the present ones) get 0.
    """
    base = np.zeros(len(VOCAB))
    base[categories_used] = [VOCAB[k][2] for k in categories_used]
    out = np.empty((len(SEGMENTS), len(PETS), len(VOCAB)))
    for s, seg in enumerate(SEGMENTS):
        w = base.copy()
        for key, factor in seg.boosts.items():
            hit = [CATEGORY_INDEX[key]] if key in CATEGORY_INDEX else \
                [k for k, v in enumerate(VOCAB) if v[0] == key]
            w[hit] *= factor
        for p, (_, _, pet_cat) in enumerate(PETS):
            wp = w.copy()
            if pet_cat is not None:
                wp[CATEGORY_INDEX[pet_cat]] *= 15.0
            else:
                wp[[CATEGORY_INDEX["DOG"], CATEGORY_INDEX["CAT"]]] *= 0.05
            out[s, p] = wp / wp.sum()
    return out


@dataclass
class People:
    """Per-customer arrays (position = internal customer index)."""

    segment: np.ndarray     # (n,) int8 index into SEGMENTS
    pet: np.ndarray         # (n,) int8 index into PETS
    join_day: np.ndarray    # (n,) int32, first day they can buy (0 = member before start)
    churn_day: np.ndarray   # (n,) int32, first day they no longer buy (days = never churn)
    rate: np.ndarray        # (n,) float64 orders per year (unscaled)
    basket: np.ndarray      # (n,) float64 mean lines per order
    repeat: np.ndarray      # (n,) float64 probability a line is a staple
    online: np.ndarray      # (n,) float64 probability an order is online
    home_store: np.ndarray  # (n,) int32
    consent_marketing: np.ndarray  # (n,) bool
    frame: pd.DataFrame     # canonical customers table (without customer_id)


def build_people(n: int, days: int, start: pd.Timestamp, n_stores: int,
                 rng: np.random.Generator) -> People:
    """Draw ``n`` customers; see the module docstring."""
    seg = rng.choice(len(SEGMENTS), size=n, p=[s.share for s in SEGMENTS]).astype(np.int8)
    pet = rng.choice(len(PETS), size=n, p=[p[1] for p in PETS]).astype(np.int8)
    joins = rng.random(n) < 0.3
    join = np.where(joins, rng.integers(0, days, n), 0).astype(np.int32)
    churns = rng.random(n) < 0.15
    life = days - join
    churn = np.where(churns, join + 1 + (rng.random(n) * (life - 1)).astype(np.int32), days)
    par = {k: np.array([getattr(s, k) for s in SEGMENTS])[seg]
           for k in ("visits", "basket", "repeat", "online")}
    rate = par["visits"] * rng.lognormal(0.0, 0.8, n)
    basket = np.maximum(par["basket"] * rng.lognormal(0.0, 0.25, n), 1.0)
    repeat = rng.beta(12 * par["repeat"], 12 * (1 - par["repeat"]))
    online = rng.beta(6 * par["online"], 6 * (1 - par["online"]))
    store_p = rng.permutation(np.arange(1, n_stores + 1) ** -0.7)
    home = rng.choice(n_stores, size=n, p=store_p / store_p.sum()).astype(np.int32)
    consent_p = rng.random(n) >= 0.03
    consent_m = consent_p & (rng.random(n) >= 0.05)
    before = rng.integers(1, 3 * 365, n)
    signup = start + pd.to_timedelta(np.where(joins, join, -before), unit="D")
    age = np.empty(n, dtype=object)
    for s, segment in enumerate(SEGMENTS):
        rows = seg == s
        age[rows] = rng.choice(_AGE, size=rows.sum(), p=_AGE_P.get(segment.name, [1 / 6] * 6))
    household = np.where(seg == 0, 3 + rng.poisson(0.8, n), 1 + rng.poisson(0.4, n))
    names = np.array([s.name for s in SEGMENTS], dtype=object)
    pets = np.array([p[0] for p in PETS], dtype=object)
    attrs = ("segment=" + pd.Series(names[seg]) + "; household_size=" +
             pd.Series(household).astype(str) + "; age_band=" + pd.Series(age) + "; pet=" +
             pd.Series(pets[pet]))
    frame = pd.DataFrame({
        "signup_date": signup.astype("datetime64[ns]"), "consent_personalization": consent_p,
        "consent_marketing": consent_m, "attributes": attrs.astype("str"),
    })
    return People(seg, pet, join, churn.astype(np.int32), rate, basket, repeat, online, home,
                  consent_m, frame)


def draw_affinity(centres: np.ndarray, segment: np.ndarray, pet: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Per-customer category affinities, ``(len(segment), len(VOCAB))`` float64, rows sum to 1."""
    alpha = AFFINITY_CONCENTRATION * centres[segment, pet]
    g = rng.standard_gamma(np.maximum(alpha, 1e-12))
    g[alpha == 0] = 0.0
    return g / g.sum(axis=1, keepdims=True)


__all__ = ["Segment", "SEGMENTS", "PETS", "People", "build_people", "draw_affinity",
           "segment_weights"]
