"""Batch picks for campaigns: top-N products (and coupons) for a whole audience, to a file.

Runs the same ``recsys.policy.Engine`` as the API, chunk by chunk. Each finished chunk is
written to ``<out>.parts/`` so a killed job resumes where it stopped; the final file is
written to a temporary name and renamed, so readers never see a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.events import Change, Consent, Erasure, fold_in_weight
from recsys.policy.pipeline import Engine

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class PicksSummary:
    """What a batch run produced (logged to MLflow)."""

    audience: int
    written: int
    skipped_no_consent: int
    coverage: float  # distinct products picked / catalog size
    chunks_resumed: int


def apply_changes(engine: Engine, changes: Iterable[Change]) -> None:
    """Bring the engine up to date with the API's journal: events, consent, erasures."""
    policy = engine.policy
    for change in changes:
        if isinstance(change, Erasure):
            engine.erase(change.customer_id)
        elif isinstance(change, Consent):
            engine.set_consent(change.customer_id, change.personalization)
        elif change.product_id:
            weight = fold_in_weight(change, purchase_weight=policy.fold_in_weight,
                                    view_weight=policy.view_weight)
            if weight:
                engine.add_interactions(change.customer_id, [change.product_id], [weight])


def select_audience(engine: Engine, audience: str) -> np.ndarray:
    """Customer ids matching ``audience``.

    Forms: ``all``; ``segment=NAME``, ``stage=NAME``, ``tier=NAME`` (comma-separated values
    allowed); ``recency<=DAYS`` (bought within the last DAYS); ``ids=a,b,c``; ``@file.txt``
    (one id per line).
    """
    frame = engine.bundle.customers
    if audience == "all":
        return frame["customer_id"].astype(str).to_numpy()
    if audience.startswith("@"):
        path = Path(audience[1:])
        if not path.is_file():
            raise DataError(f"audience file {path} does not exist.")
        return np.array([line.strip() for line in path.read_text().splitlines()
                         if line.strip()], dtype=object)
    if audience.startswith("ids="):
        return np.array([s.strip() for s in audience[4:].split(",") if s.strip()], dtype=object)
    if audience.startswith("recency<="):
        if "recency_days" not in frame:
            raise DataError("this bundle has no recency_days column; train with a customers "
                            "config to target by last purchase.")
        days = float(audience.split("<=", 1)[1])
        return frame.loc[frame["recency_days"] <= days, "customer_id"].astype(str).to_numpy()
    key, sep, values = audience.partition("=")
    if not sep or key not in ("segment", "stage", "tier"):
        raise DataError(f"audience {audience!r} is not understood; use all, segment=, stage=, "
                        "tier=, recency<=DAYS, ids=a,b or @file.txt")
    if key not in frame:
        raise DataError(f"this bundle has no {key} column; train with a customers config.")
    wanted = {v.strip() for v in values.split(",")}
    return frame.loc[frame[key].astype(str).isin(wanted), "customer_id"].astype(str).to_numpy()


def _rows(engine: Engine, ids: np.ndarray, n: int, coupons: int, run_id: str
          ) -> pd.DataFrame:
    results = engine.recommend_many(list(ids), n)
    offers = engine.coupons_many(list(ids), coupons) if coupons and hasattr(
        engine, "coupons_many") else [[] for _ in ids]
    return pd.DataFrame({
        "customer_id": ids.astype(str),
        "product_ids": [[p.product_id for p in r.picks] for r in results],
        "scores": [[round(p.score, 6) for p in r.picks] for r in results],
        "reasons": [[p.reason for p in r.picks] for r in results],
        "personalized": [r.personalized for r in results],
        "coupon_ids": [[c.coupon_id for c in o] for o in offers],
        "coupon_reasons": [[c.reason for c in o] for o in offers],
        "model_version": engine.version,
        "run_id": run_id,
    })


def write_picks(engine: Engine, audience: str, out: Path, *, n: int = 10, coupons: int = 0,
                chunk_size: int = 5000, run_id: str = "",
                progress: Callable[[int], None] | None = None) -> PicksSummary:
    """Write picks for ``audience`` to ``out`` (.parquet, .csv or .jsonl), resumably."""
    fmt = FORMATS.get(out.suffix)
    if fmt is None:
        raise DataError(f"output {out} must end in .parquet, .csv or .jsonl")
    ids = select_audience(engine, audience)
    consenting = np.array([engine.is_personalizable(c) for c in ids], bool)
    skipped = int((~consenting).sum())
    ids = ids[consenting]
    parts = out.with_name(out.name + ".parts")
    key = hashlib.sha256(json.dumps([engine.version, audience, n, coupons, chunk_size,
                                     ids.tolist()]).encode()).hexdigest()[:16]
    key_file = parts / "KEY"
    if parts.exists() and (not key_file.exists() or key_file.read_text() != key):
        shutil.rmtree(parts)  # leftovers of a different job: start over
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "KEY").write_text(key)
    resumed = 0
    for c, start in enumerate(range(0, len(ids), chunk_size)):
        part = parts / f"part-{c:06d}.parquet"
        chunk = ids[start:start + chunk_size]
        if part.exists():
            resumed += 1
        else:
            tmp = part.with_suffix(".tmp")
            _rows(engine, chunk, n, coupons, run_id).to_parquet(tmp, index=False)
            tmp.rename(part)
        if progress:
            progress(len(chunk))
    files = sorted(parts.glob("part-*.parquet"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else \
        _rows(engine, ids[:0], n, coupons, run_id)
    tmp_out = out.with_name(f".{out.name}.tmp")
    if fmt == "parquet":
        frame.to_parquet(tmp_out, index=False)
    elif fmt == "csv":
        flat = frame.copy()
        for col in ("product_ids", "scores", "reasons", "coupon_ids", "coupon_reasons"):
            flat[col] = flat[col].map(lambda v: json.dumps(list(v), default=float))
        flat.to_csv(tmp_out, index=False)
    else:
        frame.to_json(tmp_out, orient="records", lines=True)
    tmp_out.replace(out)
    shutil.rmtree(parts)
    picked = {p for row in frame["product_ids"] for p in row}
    return PicksSummary(len(ids) + skipped, len(frame), skipped,
                        len(picked) / max(engine.n_items, 1), resumed)
