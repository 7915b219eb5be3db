"""Fetch a bundle (path, or model URI through ``serving.registry``), build its engine and faiss
index, warm it up. The result, ``Served``, is immutable and swapped atomically on reload."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

from recsys.bundle import Bundle, read_bundle
from recsys.errors import BundleError, RecsysError
from recsys.models.base import RecommenderBase
from recsys.policy.pipeline import Engine, Pick
from serving.registry import download_bundle
from serving.settings import Settings

log = logging.getLogger(__name__)


class ItemIndex:
    """faiss index over unit-normalised item vectors: inner product = the cosine similarity
    ``RecommenderBase.similar_items`` ranks by, so the exact index gives the same answers.

    Parameters
    ----------
    vectors : ndarray of float32, shape (n_items, k)
    kind : {"flat", "hnsw"}
        ``IndexFlatIP`` (exact) or ``IndexHNSWFlat`` with inner product (approximate).
    """

    def __init__(self, vectors: np.ndarray, kind: str = "flat", *, m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64) -> None:
        xb = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(xb, axis=1)
        norms[norms == 0] = 1.0
        self.unit = np.ascontiguousarray(xb / norms[:, None], dtype=np.float32)
        self.kind, self.ef_search = kind, ef_search
        d = self.unit.shape[1]
        if kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
        else:
            self.index = faiss.IndexFlatIP(d)
        self.index.add(self.unit)
        self.recall: float | None = None

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def search(self, item: int, n: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``n`` nearest items to ``item`` (itself excluded)
        among ``allowed`` (boolean mask over items; None = all)."""
        xq = self.unit[item: item + 1]
        if allowed is None or allowed.all():
            k = min(n + 1, self.n_items)
            scores, ids = self.index.search(xq, k, params=self._params(None))
        else:
            keep = allowed.copy()
            keep[item] = False
            bits = np.packbits(keep, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.n_items, faiss.swig_ptr(bits))
            k = min(n, int(keep.sum()))
            if k == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            scores, ids = self.index.search(xq, k, params=self._params(selector))
        found = (ids[0] >= 0) & (ids[0] != item)
        return ids[0][found][:n], scores[0][found][:n]

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters:
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = self.ef_search
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def measure_recall(self, queries: int = 500, k: int = 10, seed: int = 0) -> float:
        """Mean recall@k of this index against exact search over a sample of items.

        A retrieved item counts as a hit when its exact score reaches the k-th best exact
        score, so ties (e.g. items with identical vectors) are not counted as misses.
        """
        k = min(k, self.n_items - 1)
        if k < 1:
            self.recall = 1.0
            return 1.0
        rng = np.random.default_rng(seed)
        sample = rng.choice(self.n_items, size=min(queries, self.n_items), replace=False)
        exact = self.unit[sample] @ self.unit.T
        exact[np.arange(len(sample)), sample] = -np.inf
        kth = -np.partition(-exact, k - 1, axis=1)[:, k - 1]
        hits = 0
        for r, q in enumerate(sample):
            found = self.search(int(q), k)[0]
            hits += int((exact[r, found] >= kth[r] - 1e-5).sum())
        self.recall = hits / (len(sample) * k)
        return self.recall


def item_vectors(model: RecommenderBase) -> np.ndarray | None:
    """The model's item vectors when its ``similar_items`` is the base class's cosine over
    them (then a faiss index answers identically); None otherwise."""
    cls = type(model)
    if cls.similar_items is not RecommenderBase.similar_items or \
            cls._item_similarity is not RecommenderBase._item_similarity:
        return None
    try:
        vectors = np.asarray(model._item_vectors(), dtype=np.float32)
    except NotImplementedError:
        return None
    return vectors if vectors.ndim == 2 and vectors.shape[0] == model.n_items_ else None


@dataclass(frozen=True)
class Served:
    """One loaded model: its engine, optional faiss index and where it came from."""

    variant: str
    engine: Engine
    index: ItemIndex | None
    source: str
    events_until: datetime | None = None
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.engine.version

    def similar(self, product_id: str, n: int, category: str | None = None) -> list[Pick]:
        """``Engine.similar`` answered by the faiss index when there is one."""
        if self.index is None:
            return self.engine.similar(product_id, n, category=category)
        engine = self.engine
        item = int(engine.products.to_index([product_id])[0])  # UnknownIdError if unknown
        ids, scores = self.index.search(item, n, engine.filters.mask(category=category))
        reason = engine.reasons.similar(item)
        return [Pick(engine.products.ids[i], float(s), reason, "similar")
                for i, s in zip(ids, scores, strict=True)]


def load_served(settings: Settings, variant: str, source: str | Path) -> Served:
    """Fetch, validate, index and warm up the bundle at ``source`` (a directory or an MLflow
    model URI); raises ``BundleError`` saying what is wrong."""
    started = time.perf_counter()
    bundle = _fetch(settings, source)
    engine = Engine(bundle, answer_cache=settings.answer_cache_customers)
    index = _build_index(settings, bundle)
    served = Served(variant, engine, index, str(source), bundle.events_until)
    warm_up(served, settings.warmup_requests)
    log.info("loaded %s model version %s (%s, %d items) in %.2fs", variant, served.version,
             bundle.model.name, engine.n_items, time.perf_counter() - started)
    return served


def _is_local(source: str | Path) -> bool:
    return isinstance(source, Path) or not str(source).startswith(("models:/", "runs:/"))


def _cache(settings: Settings) -> Path:
    """Where MLflow downloads go (temporary folders, removed after reading)."""
    cache = settings.data_dir / "serving-cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"cannot create {cache} for model downloads: {exc.strerror}") from exc
    return cache


def _fetch(settings: Settings, source: str | Path) -> Bundle:
    if _is_local(source):
        return read_bundle(Path(source))
    with tempfile.TemporaryDirectory(dir=_cache(settings)) as tmp:
        local, version = download_bundle(str(source), tmp, tracking_uri(settings))
        bundle = read_bundle(local)  # everything is in memory afterwards
    if version:
        bundle.manifest["model_version"] = version
    return bundle


def example_customer(settings: Settings, source: str | Path) -> str | None:
    """A customer of the bundle at ``source`` with history and consent to personalization
    (for a demo's curl line), or None; only the customer table is fetched. Raises
    ``BundleError`` as loading would (e.g. no champion yet)."""
    if _is_local(source):
        return _first_consenting(Path(source) / "customers.parquet")
    with tempfile.TemporaryDirectory(dir=_cache(settings)) as tmp:
        local, _ = download_bundle(str(source), tmp, tracking_uri(settings),
                                   only="customers.parquet")
        return _first_consenting(local / "customers.parquet")


def _first_consenting(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in ("customer_id",
                                                         "consent_personalization") if c in names])
        ids = table.column("customer_id").to_pylist()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise BundleError(f"cannot read the bundle's customer table {path}: {exc}") from exc
    consent = table.column(1).to_pylist() if table.num_columns > 1 else [True] * len(ids)
    return next((str(c) for c, ok in zip(ids, consent, strict=True) if ok), None)


def tracking_uri(settings: Settings) -> str:
    """The MLflow tracking URI the server uses."""
    return settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or \
        f"sqlite:///{settings.data_dir.resolve() / 'mlflow.db'}"


def _build_index(settings: Settings, bundle: Bundle) -> ItemIndex | None:
    vectors = item_vectors(bundle.model)
    if vectors is None:
        log.info("model %s has no item vectors: /similar uses the model directly",
                 bundle.model.name)
        return None
    started = time.perf_counter()
    index = ItemIndex(vectors, settings.index, m=settings.hnsw_m,
                      ef_construction=settings.hnsw_ef_construction,
                      ef_search=settings.hnsw_ef_search)
    recall = index.measure_recall(settings.recall_queries)
    log.info("faiss %s index over %d items x %d dims in %.2fs; recall@10 vs exact = %.4f",
             index.kind, index.n_items, vectors.shape[1], time.perf_counter() - started, recall)
    return index


def warm_up(served: Served, requests: int) -> None:
    """Run each kind of question once per sample so first requests are not slow and a model
    that cannot answer never goes live."""
    engine = served.engine
    known = engine.customers.ids[: max(requests, 1)].tolist()
    try:
        engine.recommend_many([*known, "__warmup_unknown__"], 10)
        for product_id in engine.products.ids[: max(requests // 4, 1)]:
            served.similar(str(product_id), 10)
        engine.popular(10)
        engine.cart([str(engine.products.ids[0])], 10)
    except RecsysError as exc:
        raise BundleError(f"model failed its warm-up: {exc}") from exc
    except Exception as exc:  # a model bug must not reach live traffic
        raise BundleError(f"model failed its warm-up: {type(exc).__name__}: {exc}") from exc


__all__ = ["ItemIndex", "Served", "item_vectors", "load_served", "warm_up",
           "example_customer", "tracking_uri"]
