"""One row per customer: RFM, segment, lifecycle stage, tier, BG/NBD, CLV and churn risk.

The table travels in the model bundle (``customers.parquet``), so it holds no PII (ids and
derived numbers only) and its columns and dtypes are fixed by ``PROFILE_COLUMNS``.

Fallbacks, all logged: with fewer than ``clv.min_repeat_customers`` repeat customers BG/NBD and
Gamma-Gamma are not fitted (``p_alive``, ``expected_purchases``, ``clv`` are NaN); when the
history is too short to train the churn classifier on two windows, ``churn_risk`` is the
BG/NBD probability of no purchase within ``churn.horizon_days`` (NaN without BG/NBD). The
frame's ``attrs`` say which source was used (``churn_source``) and the fitted parameters.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys.customers.bgnbd import BGNBD, unique_rft
from recsys.customers.churn import ChurnModel
from recsys.customers.clv import GammaGamma, customer_lifetime_value
from recsys.customers.config import CustomersConfig
from recsys.customers.history import NS_PER_DAY, History, build_history, check_transactions
from recsys.customers.lifecycle import assign_stages, assign_tiers
from recsys.customers.rfm import rfm_arrays
from recsys.customers.summary import Summary, summarize, window_totals
from recsys.errors import DataError

log = logging.getLogger(__name__)

PROFILE_COLUMNS: dict[str, str] = {
    "customer_id": "str", "recency_days": "float64", "frequency": "int64",
    "monetary": "float64", "r_score": "int8", "f_score": "int8", "m_score": "int8",
    "segment": "str", "stage": "str", "tier": "str", "p_alive": "float64",
    "expected_purchases": "float64", "clv": "float64", "churn_risk": "float64",
}


def empty_profile() -> pd.DataFrame:
    """A profile table without rows, with the canonical columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in PROFILE_COLUMNS.items()})


def _value_models(s: Summary, config: CustomersConfig) -> dict[str, np.ndarray | None]:
    """p_alive, expected purchases, CLV and the BG/NBD no-purchase probability (or None)."""
    cfg = config.clv
    unit = cfg.time_unit_days
    x = (s.n_days - 1).astype(np.float64)
    repeaters = int((x > 0).sum())
    if repeaters < cfg.min_repeat_customers:
        log.warning("BG/NBD and Gamma-Gamma not fitted: %d repeat customers < "
                    "clv.min_repeat_customers=%d; p_alive, expected_purchases and clv are NaN",
                    repeaters, cfg.min_repeat_customers)
        return {"p_alive": None, "expected_purchases": None, "clv": None, "no_purchase": None}
    ux, ut, uT, counts, inv = unique_rft(x, (s.last_day - s.first_day) / unit,
                                         (s.cut_day - s.first_day) / unit)
    bg = BGNBD().fit(ux, ut, uT, weights=counts)
    out: dict[str, np.ndarray | None] = {
        "p_alive": bg.p_alive(ux, ut, uT)[inv],
        "expected_purchases": bg.expected_purchases(cfg.prediction_days / unit, ux, ut, uT)[inv],
        "no_purchase": bg.prob_no_purchase(config.churn.horizon_days / unit, ux, ut, uT)[inv],
        "bgnbd_params": bg.params_,
    }
    try:
        gg = GammaGamma().fit(x, s.repeat_mean)
    except DataError as exc:
        log.warning("Gamma-Gamma not fitted (%s); clv is NaN", exc)
        out["clv"] = None
        return out
    ex_spend = gg.expected_spend(x, s.repeat_mean)
    value = customer_lifetime_value(
        bg, ux, ut, uT, np.ones_like(ux), horizon_days=cfg.horizon_days,
        step_days=cfg.step_days, time_unit_days=unit,
        annual_discount_rate=cfg.annual_discount_rate, margin=cfg.margin)
    out["clv"] = value[inv] * ex_spend
    out["gamma_gamma_params"] = gg.params_
    return out


def _churn_risk(history: History, config: CustomersConfig, churn_model: ChurnModel | None,
                fallback: np.ndarray | None) -> tuple[np.ndarray, str]:
    if churn_model is None:
        try:
            churn_model = ChurnModel.from_config(config.churn).fit(history)
        except DataError as exc:
            source = "bgnbd" if fallback is not None else "none"
            log.info("churn classifier not trained (%s); churn_risk from %s", exc, source)
            return (fallback if fallback is not None
                    else np.full(history.n_customers, np.nan)), source
    return churn_model.predict(history), "classifier"


def profile_customers(transactions: pd.DataFrame, *, as_of: object | None = None,
                      config: CustomersConfig | None = None,
                      products: pd.DataFrame | None = None,
                      redemptions: pd.DataFrame | None = None,
                      customers: pd.DataFrame | None = None,
                      churn_model: ChurnModel | None = None) -> pd.DataFrame:
    """Profile every customer as of ``as_of``.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions (``customer_id, order_id, amount, timestamp``; ``product_id``
        with ``products``). Rows after ``as_of`` are excluded with a ``FutureRowsWarning``.
    as_of : date-like, optional
        Reference date; default the latest transaction.
    config : CustomersConfig, optional
        Defaults equal ``configs/customers.yaml``.
    products, redemptions : DataFrame, optional
        Enable the category-breadth and coupon-usage churn features.
    customers : DataFrame, optional
        Known customers (``customer_id``); those without purchases get stage ``prospect``.
    churn_model : ChurnModel, optional
        A fitted model to score with; by default one is trained on windows ending at ``as_of``.

    Returns
    -------
    DataFrame
        Columns and dtypes of ``PROFILE_COLUMNS``, one row per customer, sorted by id.
        Prospects have NaN recency/model columns, frequency 0 and scores 0.
    """
    config = config or CustomersConfig()
    check_transactions(transactions)
    if len(transactions) == 0 and as_of is None:
        history = None
    else:
        history = build_history(transactions, as_of=as_of, products=products,
                                redemptions=redemptions)
    if history is None or history.n_customers == 0:
        frame = empty_profile()
    else:
        frame = _profile(history, config, churn_model)
    if customers is not None and len(customers):
        frame = _add_prospects(frame, customers, config.tiers.levels[0].name)
    return frame


def _profile(history: History, config: CustomersConfig,
             churn_model: ChurnModel | None) -> pd.DataFrame:
    s = summarize(history)
    cols = rfm_arrays(history, config.rfm, s)
    models = _value_models(s, config)
    risk, source = _churn_risk(history, config, churn_model, models["no_purchase"])
    cols["stage"] = assign_stages(
        recency_days=s.recency_days, tenure_days=s.tenure_days, n_days=s.n_days,
        n_orders=s.n_orders, mean_gap=s.mean_gap, f_score=cols["f_score"],
        m_score=cols["m_score"], churn_risk=risk, config=config.lifecycle)
    start = history.as_of_ns - config.tiers.window_days * NS_PER_DAY
    cols["tier"] = assign_tiers(window_totals(history, start, history.as_of_ns)[0], config.tiers)
    nan = np.full(history.n_customers, np.nan)
    for name in ("p_alive", "expected_purchases", "clv"):
        value = models[name]
        cols[name] = nan if value is None else value
    cols["churn_risk"] = risk
    frame = pd.DataFrame({"customer_id": history.customer_ids, **cols})
    frame = frame[list(PROFILE_COLUMNS)].astype(PROFILE_COLUMNS)
    frame.attrs.update({
        "as_of": str(history.as_of), "churn_source": source,
        **{k: [float(v) for v in models[k]] for k in ("bgnbd_params", "gamma_gamma_params")
           if models.get(k) is not None}})
    return frame


def _add_prospects(frame: pd.DataFrame, customers: pd.DataFrame, base_tier: str) -> pd.DataFrame:
    if "customer_id" not in customers.columns:
        raise DataError("customers frame lacks column 'customer_id'")
    # object arrays: hashing Python strings is far faster than Arrow-backed isin
    ids = pd.unique(customers["customer_id"].dropna().astype(str).to_numpy(dtype=object))
    known = pd.Index(frame["customer_id"].to_numpy(dtype=object))
    new = ids[known.get_indexer(ids) < 0]
    if len(new) == 0:
        return frame
    extra = empty_profile().reindex(range(len(new)))
    extra["customer_id"] = new
    extra[["frequency", "r_score", "f_score", "m_score"]] = 0
    extra["monetary"] = 0.0
    extra[["segment", "stage"]] = "prospect"
    extra["tier"] = base_tier
    out = pd.concat([frame, extra], ignore_index=True)
    out = out.sort_values("customer_id", ignore_index=True).astype(PROFILE_COLUMNS)
    out.attrs = dict(frame.attrs)
    return out


def group_summary(profile: pd.DataFrame, by: str = "segment") -> pd.DataFrame:
    """Customers, revenue (``monetary``) and mean CLV per value of ``by`` with shares.

    Returns
    -------
    DataFrame indexed by ``by``: ``customers``, ``customer_share``, ``revenue``,
    ``revenue_share``, ``mean_clv``; sorted by revenue, largest first.
    """
    if by not in profile.columns:
        raise ValueError(f"profile has no column {by!r}; use one of {list(profile.columns)}")
    g = profile.groupby(by, observed=True)
    out = pd.DataFrame({"customers": g.size(), "revenue": g["monetary"].sum(),
                        "mean_clv": g["clv"].mean()})
    out["customer_share"] = out["customers"] / max(len(profile), 1)
    total = out["revenue"].sum()
    out["revenue_share"] = out["revenue"] / total if total else np.nan
    cols = ["customers", "customer_share", "revenue", "revenue_share", "mean_clv"]
    return out[cols].sort_values("revenue", ascending=False)


__all__ = ["PROFILE_COLUMNS", "empty_profile", "profile_customers", "group_summary"]
