"""Evaluation job: a dataset name -> cleaned data -> temporal split -> all models side by side."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from recsys.data.clean import clean
from recsys.data.dataset import Weighting
from recsys.data.load import load_dataset
from recsys.data.schema import RetailData
from recsys.data.split import TemporalSplit, temporal_split
from recsys.errors import ConfigError
from recsys.evaluation.report import Comparison, evaluate_many

log = logging.getLogger(__name__)


def load_clean(source: str) -> RetailData:
    """``load_dataset(source)`` followed by ``clean``; logs the cleaning report."""
    data, report = clean(load_dataset(source))
    log.info("%s", report)
    return data


def parse_models(spec: str | Sequence[str]) -> list[str]:
    """``"als,bpr"`` -> ``["als", "bpr"]``, checked against the model registry.

    Raises ``ConfigError`` naming the unknown names and the known ones.
    """
    from recsys.models import REGISTRY

    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)
             if s.strip()]
    if not names:
        raise ConfigError(f"no model given; choose from {', '.join(sorted(REGISTRY))}.")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(sorted(REGISTRY))}.")
    return list(dict.fromkeys(names))


def split_data(data: RetailData, test_days: int) -> TemporalSplit:
    """The last ``test_days`` days as test; a clear ``ConfigError`` when that is impossible."""
    try:
        return temporal_split(data.transactions, test_days=test_days)
    except ValueError as exc:
        raise ConfigError(f"cannot split {data.name} with --test-days {test_days}: {exc}"
                          ) from None


def run(dataset: str | RetailData, models: str | Sequence[str], *, test_days: int = 28,
        k: int = 10, params: Mapping[str, Mapping[str, Any]] | None = None,
        weighting: Weighting = "log", half_life_days: float | None = None,
        exclude_seen: bool = False) -> Comparison:
    """Evaluate ``models`` on one temporal split of ``dataset``.

    Parameters
    ----------
    dataset : str or RetailData
        A source for ``load_dataset`` (name, file, directory) or already cleaned data.
    models : str or sequence of str
        Registry names, e.g. ``"als,bpr,ease"``.
    test_days : int
        Length of the test period at the end of the data.
    k : int
        Metric cut-off.
    params : mapping, optional
        ``name -> constructor parameters`` (e.g. tuned ones); others use defaults.
    weighting, half_life_days, exclude_seen
        See ``recsys.evaluation.evaluate_many``.
    """
    names = parse_models(models)
    data = load_clean(dataset) if isinstance(dataset, str) else dataset
    split = split_data(data, test_days)
    log.info("split %s", split.summary())
    specs = {n: dict((params or {}).get(n, {})) for n in names}
    return evaluate_many(specs, split, data, k=k, weighting=weighting,
                         half_life_days=half_life_days, exclude_seen=exclude_seen)


__all__ = ["load_clean", "parse_models", "split_data", "run"]
