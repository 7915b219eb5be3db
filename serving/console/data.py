"""What each console page shows, computed from the app's own state: the live models and their
bundles, the event store and exposure log, the Prometheus registry, and (for the KPIs, which
need the purchase history bundles do not carry) the dataset the model was trained on.

Anything slower than a page view (the KPI report, the experiment analysis) is computed off
the request path and kept: the KPIs once per dataset and model version, the experiment
analysis for ``REPORT_TTL`` seconds (a stale one is shown while a fresh one is computed).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException
from prometheus_client.parser import text_string_to_metric_families

from recsys.policy.pipeline import Engine
from serving.ab import Models
from serving.experiments import ExperimentQuery, experiment_results
from serving.loader import Served
from serving.metrics import Metrics
from serving.routers.coupons import coupon_picks
from serving.runtime import Runtime
from serving.schemas import ItemPublic, RecommendationsPublic, RecommendationsQuery
from serving.settings import Settings

log = logging.getLogger(__name__)
REPORT_TTL = 30.0  # seconds an experiment analysis is shown before it is recomputed
RATE_WINDOW = 60.0  # seconds over which the live request rate is measured
API_PREFIX = "/v1"  # live figures are the API's, not the console's own requests


# -- background results ---------------------------------------------------------------------
@dataclass
class Slot:
    """One value computed in a background thread: ``value`` (or ``error``) and when."""

    value: Any = None
    error: str | None = None
    key: object = None
    at: float = 0.0
    running: bool = False


class Background:
    """Values that take longer than a page view, computed in a thread and kept."""

    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()

    def get(self, name: str, key: object, compute: Callable[[], Any],
            ttl: float | None = None, wait: float = 0.0) -> Slot:
        """The slot for ``name``; starts ``compute`` when the slot has no value for ``key``
        or the value is older than ``ttl``. ``wait``: seconds to wait for a first value."""
        with self._lock:
            slot = self._slots.setdefault(name, Slot())
            stale = slot.key != key or (ttl is not None and time.time() - slot.at > ttl)
            if stale and not slot.running:
                slot.running = True
                done = threading.Event()
                threading.Thread(target=self._run, args=(slot, key, compute, done),
                                 name=f"console-{name}", daemon=True).start()
                if wait and slot.key != key:
                    done.wait(wait)
        return slot

    def _run(self, slot: Slot, key: object, compute: Callable[[], Any],
             done: threading.Event) -> None:
        try:
            value, error = compute(), None
        except HTTPException as exc:  # e.g. no exposures logged yet (404)
            value, error = None, str(exc.detail)
        except Exception as exc:  # shown on the page; the server keeps serving
            log.exception("console: computing %s failed", key)
            value, error = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            slot.value, slot.error, slot.key, slot.at = value, error, key, time.time()
            slot.running = False
        done.set()


# -- overview -------------------------------------------------------------------------------
class RequestRate:
    """The API's request rate over about the last minute, from the request counter."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque([(time.time(), 0.0)])
        self._lock = threading.Lock()

    def update(self, total: float) -> tuple[float, float]:
        """Requests per second and the seconds they were counted over: since the newest
        earlier view at least a minute old (or since the start)."""
        now = time.time()
        with self._lock:
            self._samples.append((now, total))
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
                self._samples.popleft()
            t0, c0 = self._samples[0]
        return ((total - c0) / (now - t0) if now > t0 else 0.0), now - t0


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus-style quantile (seconds) from cumulative ``{upper bound: count}``."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def _tallies(metrics: Metrics) -> dict[str, dict[str, float]]:
    """The app's metric samples summed by what the console shows: API requests by status,
    API latency buckets by bound, fallbacks by reason, answers by variant."""
    out: dict[str, dict[str, float]] = {"status": {}, "le": {}, "reason": {}, "variant": {}}
    wanted = {"recsys_requests_total": ("status", True),
              "recsys_request_duration_seconds_bucket": ("le", True),
              "recsys_fallbacks_total": ("reason", False),
              "recsys_variant_responses_total": ("variant", False)}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            label, api_only = wanted.get(s.name, ("", False))
            if not label or (api_only and not s.labels.get("route", "").startswith(API_PREFIX)):
                continue
            key = s.labels.get(label, "0" if label == "status" else "")
            out[label][key] = out[label].get(key, 0.0) + s.value
    return out


def live_figures(metrics: Metrics, rate: RequestRate) -> dict[str, Any]:
    """Requests, rate, latency quantiles, errors and fallbacks of the API routes."""
    tally = _tallies(metrics)
    by_status = {int(k): v for k, v in tally["status"].items()}
    total = sum(by_status.values())
    errors = sum(v for k, v in by_status.items() if k >= 500)
    client_errors = sum(v for k, v in by_status.items() if 400 <= k < 500)
    buckets = {float(k): v for k, v in tally["le"].items()}
    fallbacks, variants = tally["reason"], tally["variant"]
    latency = {f"p{int(q * 100)}": _quantile(buckets, q) for q in (0.5, 0.95, 0.99)}
    answers = sum(variants.values())
    per_second, seconds = rate.update(total)
    return {"requests": int(total), "rate": per_second, "rate_seconds": seconds,
            "errors": int(errors),
            "client_errors": int(client_errors),
            "error_share": errors / total if total else None,
            "latency_ms": {k: None if v is None else v * 1e3 for k, v in latency.items()},
            "fallbacks": {k: int(v) for k, v in sorted(fallbacks.items())},
            "fallback_share": sum(fallbacks.values()) / answers if answers else None,
            "variants": {k: int(v) for k, v in sorted(variants.items())}}


def registered_name(settings: Settings) -> str | None:
    """The registered model's name when the server loads from the MLflow registry."""
    if settings.bundle_path is not None or not settings.model_uri.startswith("models:/"):
        return None
    rest = settings.model_uri.removeprefix("models:/")
    return rest.split("@")[0].split("/")[0] or None


def offline_metrics(settings: Settings, version: str) -> dict[str, Any]:
    """``{"baselines": [...], "rows": {metric: {"model": v, "<baseline>": v}}}`` logged by the
    training run of registered ``version`` (no rows when the model is not from the registry)."""
    name = registered_name(settings)
    if name is None or not version.isdigit():
        return {"baselines": [], "rows": {}}
    import os

    import mlflow  # heavy: only for registered models, and the result is kept
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                            or f"sqlite:///{settings.data_dir.resolve() / 'mlflow.db'}")
    client = MlflowClient()
    run = client.get_run(client.get_model_version(name, version).run_id)
    table: dict[str, dict[str, float]] = {}
    for key, value in run.data.metrics.items():
        if key.startswith("baseline."):
            _, baseline, metric = key.split(".", 2)
            table.setdefault(metric.replace("_at_", "@"), {})[baseline] = value
    for metric in list(table):
        own = run.data.metrics.get(metric.replace("@", "_at_"))
        if own is not None:
            table[metric] = {"model": own} | table[metric]
    baselines = sorted({b for row in table.values() for b in row} - {"model"})
    return {"baselines": baselines, "rows": dict(sorted(table.items()))}


def model_summary(served: Served) -> dict[str, Any]:
    """The facts of a live model that its bundle manifest records."""
    manifest = served.engine.bundle.manifest
    return {"variant": served.variant, "version": served.version,
            "model": type(served.engine.model).__name__,
            "dataset": manifest.get("dataset"), "created_at": manifest.get("created_at"),
            "data_window": manifest.get("data_window"),
            "customers": len(served.engine.bundle.customers),
            "products": len(served.engine.bundle.products)}


# -- customers ------------------------------------------------------------------------------
def _histogram(values: pd.Series, edges: Sequence[float], fmt: str) -> tuple[list[str], list[int]]:
    counts, _ = np.histogram(values.dropna().clip(edges[0], edges[-1]), bins=np.asarray(edges))
    labels = [f"{fmt.format(a)}–{fmt.format(b)}" for a, b in zip(edges[:-1], edges[1:],
                                                                   strict=True)]
    return labels, counts.astype(int).tolist()


def customer_figures(models: Models) -> dict[str, Any]:
    """Segments, tiers, the lifecycle funnel (with moves to the challenger's profile when one
    is live), churn-risk and CLV distributions from the champion bundle's profile."""
    from recsys.customers.lifecycle import STAGES  # imported on first use: the app starts fast

    frame = models.champion.engine.bundle.customers
    out: dict[str, Any] = {"customers": len(frame), "profiled": "stage" in frame,
                           "moves": None, "clv": None, "clv_mean": None}
    if "stage" not in frame:
        return out
    for col in ("segment", "tier"):
        counts = frame[col].astype(str).value_counts()
        out[col] = list(zip(counts.index.tolist(), counts.astype(int).tolist(), strict=True))
    stages = frame["stage"].astype(str).value_counts()
    out["funnel"] = [(s, int(stages.get(s, 0))) for s in STAGES]
    if models.challenger is not None and "stage" in models.challenger.engine.bundle.customers:
        other = models.challenger.engine.bundle.customers[["customer_id", "stage"]]
        both = frame[["customer_id", "stage"]].merge(other, on="customer_id", how="outer",
                                                     suffixes=("_from", "_to"))
        both = both.fillna({"stage_from": "(absent)", "stage_to": "(absent)"})
        moves = pd.crosstab(both["stage_from"], both["stage_to"])
        order = [s for s in (*STAGES, "(absent)") if s in moves.index or s in moves.columns]
        moves = moves.reindex(index=order, columns=order, fill_value=0)
        out["moves"] = {"from": models.champion.version, "to": models.challenger.version,
                        "stages": order, "rows": moves.astype(int).values.tolist(),
                        "delta": [(s, int((both["stage_to"] == s).sum()
                                          - (both["stage_from"] == s).sum())) for s in STAGES]}
    risk = frame["churn_risk"].astype(float)
    out["churn"] = _histogram(risk, np.linspace(0, 1, 11), "{:.1f}")
    clv = frame["clv"].astype(float).dropna()
    if len(clv):
        top = float(np.quantile(clv, 0.99)) or 1.0
        edges = np.linspace(0, top, 11)
        labels, counts = _histogram(clv, edges, "{:,.0f}")
        labels[-1] += "+"  # the top 1 % are clipped into the last bin
        out["clv"] = (labels, counts)
        out["clv_mean"] = float(clv.mean())
    return out


def compute_kpis(dataset: str, runtime: Runtime) -> dict[str, Any]:
    """The KPI report of ``recsys customers kpis --dataset <dataset>`` with the built-in
    customer settings: the cleaned dataset minus customers erased through the API."""
    from recsys.customers import kpi_report, parse_customers_config
    from recsys.data.clean import clean
    from recsys.data.load import load_dataset

    data, _ = clean(load_dataset(dataset))
    tx = data.transactions
    if runtime.store is not None:
        erased = runtime.store.erased_among(tx["customer_id"].astype(str).unique())
        if erased:
            tx = tx[~tx["customer_id"].astype(str).isin(erased)]
    optional = {name: frame if len(frame) else None for name, frame in
                (("offers", data.offers), ("redemptions", data.redemptions),
                 ("campaigns", data.campaigns))}
    report = kpi_report(tx, config=parse_customers_config(None, "defaults"), **optional)
    periods = report.periods.drop(columns="start", errors="ignore")
    cohorts = report.cohorts
    months = [c for c in cohorts.columns if c != "customers"]
    return {"dataset": dataset, "columns": list(periods.columns),
            "periods": periods.to_dict("records"), "months": months,
            "cohorts": [{"cohort": str(c), "customers": int(row["customers"]),
                         "shares": [float(row[m]) for m in months]}
                        for c, row in cohorts.iterrows()]}


def kpi_dataset(settings: Settings, models: Models) -> str | None:
    """The dataset the KPIs are computed on: the setting, else the champion's own dataset."""
    return settings.console_dataset or models.champion.engine.bundle.manifest.get("dataset")


# -- coupons and experiments ----------------------------------------------------------------
def experiment_report(runtime: Runtime, settings: Settings, metrics: Metrics
                      ) -> dict[str, Any]:
    """``GET /admin/experiments``' analysis with its default window (raises 404/503)."""
    return experiment_results(runtime, settings, metrics, ExperimentQuery())


def coupon_rows(models: Models, report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per catalog coupon: budget, spent and left, issued, redeemed and uplift (the
    experiment analysis attributes both to the exposure log)."""
    chooser = models.champion.engine.coupon_chooser
    if chooser is None:
        return []
    measured = {c["coupon_id"]: c for c in (report or {}).get("coupons", [])}
    rows = []
    for coupon in chooser.catalog.coupons:
        m = measured.get(coupon.id, {})
        issued, redeemed = int(m.get("treated", 0)), int(m.get("redemptions", 0))
        spent = float(m.get("cost", 0.0))
        rows.append({"id": coupon.id, "kind": coupon.kind, "purpose": coupon.purpose,
                     "value": coupon.value, "valid": f"{coupon.valid_from} – {coupon.valid_to}",
                     "budget": coupon.budget, "spent": spent,
                     "left": coupon.budget - spent, "spent_share": spent / coupon.budget,
                     "issued": issued, "redeemed": redeemed,
                     "rate": redeemed / issued if issued else None,
                     "holdout_share": coupon.holdout_share, "held_out": m.get("held_out"),
                     "uplift": m.get("spend"), "net": m.get("net_incremental_revenue"),
                     "note": m.get("note")})
    return rows


# -- customer lookup ------------------------------------------------------------------------
PROFILE_FIELDS = ("segment", "stage", "tier", "recency_days", "frequency", "monetary",
                  "p_alive", "clv", "churn_risk")


def lookup(runtime: Runtime, models: Models, customer_id: str, n: int = 10
           ) -> dict[str, Any]:
    """What support staff may see of one customer. Erased: nothing but that fact. Opted
    out of personalization: no profile, and the API's non-personalized answer."""
    store = runtime.store
    if store is None:
        raise HTTPException(503, "the event store is unavailable: erasures cannot be checked")
    served = models.route(customer_id)
    engine = served.engine
    if engine.is_erased(customer_id) or store.erased_among([customer_id]):
        return {"customer_id": customer_id, "erased": True}
    row = engine.customers.to_index([customer_id], missing="mark")[0]
    personal = bool(engine.is_personalizable(customer_id))
    out: dict[str, Any] = {"customer_id": customer_id, "erased": False, "known": row >= 0,
                           "personalizable": personal, "variant": served.variant,
                           "consent": None, "profile": None, "history": None}
    if row >= 0:
        out.update(_stored(engine, int(row), personal))
    bought = [e for e in store.events(customer_id) if e.event_type == "purchase"][-10:][::-1]
    out["answer"] = answer = api_answer(served, customer_id,
                                        RecommendationsQuery(n=n, include_coupons=True))
    out["titles"] = titles = _titles(engine, [e.product_id for e in bought]
                                     + [i.product_id for i in answer.items])
    out["purchases"] = [{"at": e.timestamp, "product_id": e.product_id, "amount": e.amount,
                         "title": titles.get(str(e.product_id), "")} for e in bought]
    return out


def _stored(engine: Engine, row: int, personal: bool) -> dict[str, Any]:
    """A bundle customer's consent, profile (only when personalizable) and heaviest
    products in the training history."""
    frame = engine.bundle.customers
    record = frame.iloc[row]
    history = engine.bundle.history[row]
    top = np.argsort(-history.data, kind="stable")[:10]
    rows = engine.bundle.products.iloc[history.indices[top]]
    return {
        "consent": {c: bool(record[c]) for c in ("consent_personalization",
                                                 "consent_marketing") if c in frame},
        "profile": {f: _native(record[f]) for f in PROFILE_FIELDS if f in frame}
        if personal else None,
        "history": [{"product_id": str(p), "title": str(t), "category": str(c),
                     "weight": float(w)} for p, t, c, w in zip(
            rows["product_id"], rows["title"], rows["category"], history.data[top],
            strict=True)]}


def api_answer(served: Served, customer_id: str, query: RecommendationsQuery
               ) -> RecommendationsPublic:
    """The answer of ``GET /v1/customers/{id}/recommendations`` for ``query``, made by the
    same engine calls, without counting it as an answer shown to the customer (no exposure
    log row, no metrics: a support lookup is not a recommendation seen)."""
    result = served.engine.recommend_many(
        [customer_id], query.n, category=query.category, min_price=query.min_price,
        max_price=query.max_price, exclude_purchased=query.exclude_purchased,
        mode=query.mode)[0]
    coupons = coupon_picks(served, [customer_id], query.n)[0][0] if query.include_coupons \
        else None
    return RecommendationsPublic(
        customer_id=customer_id, items=[ItemPublic.of(p) for p in result.picks],
        personalized=result.personalized, fallback=result.fallback, coupons=coupons,
        model_version=served.version, variant=served.variant, request_id="")


def _native(value: object) -> object:
    """numpy scalars as Python ones, so templates can tell integers from floats."""
    return value.item() if isinstance(value, np.generic) else value


def _titles(engine: Engine, product_ids: Sequence[str | None]) -> dict[str, str]:
    """Product titles by id ("" for products not in the bundle), one lookup for all."""
    ids = [str(p) for p in product_ids]
    if not ids:
        return {}
    pos = engine.products.to_index(ids, missing="mark")
    titles = engine.bundle.products["title"].take(np.maximum(pos, 0)).astype(str).tolist()
    return {i: t if p >= 0 else "" for i, p, t in zip(ids, pos, titles, strict=True)}


# -- batch picks export ---------------------------------------------------------------------
AUDIENCE_FIELDS = ("segment", "stage", "tier")


def audiences(models: Models) -> dict[str, list[str]]:
    """The values each audience field takes in the champion's customer table."""
    frame = models.champion.engine.bundle.customers
    return {f: sorted(frame[f].dropna().astype(str).unique().tolist())
            for f in AUDIENCE_FIELDS if f in frame}


def audience_ids(models: Models, field_name: str, value: str) -> np.ndarray:
    """Customer ids of the champion's table where ``field_name == value`` (all: "all")."""
    frame = models.champion.engine.bundle.customers
    ids = frame["customer_id"].astype(str).to_numpy()
    if field_name == "all":
        return ids
    return ids[(frame[field_name].astype(str) == value).to_numpy()]


def _cell(value: object) -> object:
    """A spreadsheet must not run a cell as a formula (CSV injection)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(models: Models, ids: Sequence[str], n: int, coupons: int) -> str:
    """Batch picks for ``ids`` from the champion, as ``recsys picks`` makes them (one engine
    call; coupons spend one shared campaign budget), as CSV."""
    engine = models.champion.engine
    results = engine.recommend_many(list(ids), n)
    budget = engine.coupon_budget()
    picks = engine.coupons_many(list(ids), coupons, budget=budget) if coupons and budget \
        else [[] for _ in ids]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["customer_id", "model_version", "personalized", "fallback", "product_ids",
                     "reasons", "coupon_ids"])
    for customer_id, result, chosen in zip(ids, results, picks, strict=True):
        writer.writerow([_cell(customer_id), engine.version, result.personalized,
                         result.fallback or "",
                         _cell("|".join(p.product_id for p in result.picks)),
                         _cell("|".join(p.reason for p in result.picks)),
                         _cell("|".join(c.coupon_id for c in chosen))])
    return buffer.getvalue()


@dataclass
class ConsoleState:
    """The console's per-process state, kept on ``app.state.console``."""

    background: Background = field(default_factory=Background)
    rate: RequestRate = field(default_factory=RequestRate)
    memo: dict[object, dict[str, Any]] = field(default_factory=dict)  # customer figures


__all__ = ["ConsoleState", "Background", "RequestRate", "live_figures", "offline_metrics",
           "model_summary", "customer_figures", "compute_kpis", "kpi_dataset",
           "experiment_report", "coupon_rows", "lookup", "api_answer", "audiences",
           "audience_ids", "export_csv", "registered_name"]
