"""Hyper-parameter search with optuna (seeded TPE) on a validation period, never the test period.

The validation period is the ``validation_days`` just before the test cut: the search splits
the *training* part of the test split again (``temporal_split(split.train, ...)``), fits each
trial on what precedes the validation period and scores it there. Budget: ``n_trials`` and/or
``timeout`` seconds. The first trial is always the model's defaults, then ``START_POINTS``, so
the result is never worse than those on the validation period.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from recsys.data.dataset import Weighting
from recsys.data.split import TemporalSplit, temporal_split
from recsys.errors import ConfigError
from recsys.evaluation.evaluate import EvalData, evaluate, prepare

log = logging.getLogger(__name__)

# name -> parameter -> ("int" | "float", low, high, log) or ("cat", choices).
# Only the parameters that move quality; threads, seeds and sizes stay at their defaults.
SEARCH_SPACES: dict[str, dict[str, tuple[Any, ...]]] = {
    "popularity": {"by": ("cat", ("customers", "weight"))},
    "trending": {"half_life_days": ("float", 3.0, 120.0, True),
                 "prior_days": ("float", 0.0, 30.0, False)},
    "buyagain": {"horizon_days": ("float", 7.0, 1e5, True),
                 "frequency_power": ("float", 0.0, 2.0, False),
                 "unknown_interval_days": ("float", 30.0, 365.0, True)},
    "itemknn": {"weighting": ("cat", ("cosine", "bm25", "tfidf")),
                "neighbours": ("int", 10, 500, True)},
    "ease": {"regularization": ("float", 1.0, 5000.0, True)},
    "als": {"factors": ("int", 16, 256, True),
            "regularization": ("float", 1e-3, 1.0, True),
            "alpha": ("float", 1.0, 100.0, True),
            "iterations": ("int", 5, 30, False)},
    "bpr": {"factors": ("int", 16, 256, True),
            "learning_rate": ("float", 1e-3, 0.1, True),
            "regularization": ("float", 1e-4, 0.1, True),
            "iterations": ("int", 20, 150, True)},
    "content": {"dims": ("int", 16, 256, True)},
    "tifuknn": {"k": ("int", 20, 1000, True),
                "group_size": ("int", 1, 20, True),
                "r_b": ("float", 0.5, 1.0, False),
                "r_g": ("float", 0.3, 1.0, False),
                "alpha": ("float", 0.0, 1.0, False)},
    # The hybrid's components keep their own (or given) parameters; the search is the blend.
    "hybrid": {"content_weight": ("float", 0.0, 1.0, False),
               "buyagain_weight": ("float", 0.1, 10.0, True),
               "category_weight": ("float", 0.0, 1.0, False),
               "new_weight": ("float", 0.0, 2.0, False),
               "popularity_weight": ("float", 0.0, 1.0, False),
               "trending_weight": ("float", 0.0, 2.0, False)},
}

# Points tried right after the defaults: the literature's version of a model, so that the
# search never ends below it. Buy-again by the customer's own frequency alone (P-TopFreq:
# a horizon so long that every product's repurchase chance is ~1).
START_POINTS: dict[str, list[dict[str, Any]]] = {
    "buyagain": [{"horizon_days": 1e5, "frequency_power": 1.0, "unknown_interval_days": 180.0}],
}

# Parameters a model reads when scoring, not in ``fit``: when a search varies only these, the
# model is fitted once and re-scored per trial (the hybrid's blend weights; its components are
# the expensive part). tests/training/test_evaluate_cli.py checks that this equals refitting.
SCORE_TIME_PARAMS: dict[str, frozenset[str]] = {
    "hybrid": frozenset({"cf_weight", "content_weight", "buyagain_weight", "category_weight",
                         "new_weight", "popularity_weight", "trending_weight"}),
}

OnTrial = Callable[[int, dict[str, Any], dict[str, float]], None]


@dataclass
class TuneResult:
    """Outcome of a search: best parameters, their validation score and every trial."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]] = field(default_factory=list)  # number, params, value
    validation: dict[str, object] = field(default_factory=dict)  # validation split summary


def validation_split(split: TemporalSplit, validation_days: int) -> TemporalSplit:
    """The last ``validation_days`` of ``split.train`` as test; the test period is not used."""
    try:
        return temporal_split(split.train, test_days=validation_days)
    except ValueError as exc:
        raise ConfigError(f"no validation period of {validation_days} days before "
                          f"{split.cut.date()}: {exc}") from None


def _suggest(trial: optuna.Trial, name: str, dim: tuple[Any, ...]) -> Any:
    kind = dim[0]
    if kind == "int":
        return trial.suggest_int(name, dim[1], dim[2], log=dim[3])
    if kind == "float":
        return trial.suggest_float(name, dim[1], dim[2], log=dim[3])
    if kind == "cat":
        return trial.suggest_categorical(name, list(dim[1]))
    raise ValueError(f"search space of {name!r} has unknown kind {kind!r}.")


def _defaults(model_cls: type, space: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
    """The constructor defaults of the searched parameters (enqueued as trial 0)."""
    sig = inspect.signature(model_cls)
    return {p: sig.parameters[p].default for p in space if p in sig.parameters}


def tune(model_name: str, split: TemporalSplit, n_trials: int = 20,
         on_trial: OnTrial | None = None, *, products: pd.DataFrame | None = None,
         validation: EvalData | None = None, validation_days: int = 28, k: int = 10,
         metric: str = "ndcg", timeout: float | None = None, seed: int = 0,
         base_params: Mapping[str, Any] | None = None, weighting: Weighting = "log",
         half_life_days: float | None = None) -> TuneResult:
    """Search ``SEARCH_SPACES[model_name]`` for the best ``metric@k`` on the validation period.

    Parameters
    ----------
    model_name : str
        Registry name.
    split : TemporalSplit
        The evaluation split; only ``split.train`` is used.
    n_trials : int
        Trial budget (the first trial is the defaults).
    on_trial : callable, optional
        ``on_trial(trial_number, params, metrics)`` after each trial, ``metrics`` being
        ``Report.flat()`` on the validation period (e.g. to log nested MLflow runs).
    products : DataFrame, optional
        Product table for item features (content / hybrid models).
    validation : EvalData, optional
        An already prepared validation split (to share it between models); else it is built
        from ``split`` with ``validation_days``, ``weighting`` and ``half_life_days``.
    metric, k : str, int
        The objective is ``Report.flat()[f"{metric}@{k}"]``, maximised: ``"ndcg"`` over
        every test customer, ``"returning/ndcg"`` over the returning ones (the headline).
    timeout : float, optional
        Stop starting trials after this many seconds.
    seed : int
        Seed of the TPE sampler.
    base_params : mapping, optional
        Fixed parameters passed to every trial (not searched).
    """
    from recsys.models import REGISTRY, make_model

    if model_name not in REGISTRY:
        raise ConfigError(f"unknown model {model_name!r}; choose from "
                          f"{', '.join(sorted(REGISTRY))}.")
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1, not {n_trials}.")
    space = SEARCH_SPACES.get(model_name, {})
    fixed = dict(base_params or {})
    space = {p: d for p, d in space.items() if p not in fixed}
    if validation is None:
        validation = prepare(validation_split(split, validation_days), products=products,
                             weighting=weighting, half_life_days=half_life_days)
    objective_key = f"{metric}@{k}"
    trials: list[dict[str, Any]] = []
    fit_once = set(space) <= SCORE_TIME_PARAMS.get(model_name, frozenset())
    fitted: list[Any] = []  # the single fitted model when ``fit_once``

    def objective(trial: optuna.Trial) -> float:
        params = {p: _suggest(trial, p, d) for p, d in space.items()}
        model = fitted[0] if fitted else make_model(model_name, **fixed, **params)
        for p, v in params.items():  # what sklearn's set_params does
            setattr(model, p, v)
        report = evaluate(model, validation, k, name=model_name, fit=not fitted,
                          protocols=False)
        if fit_once and not fitted:
            fitted.append(model)
        flat = report.flat()
        if objective_key not in flat:
            raise ConfigError(f"unknown metric {metric!r}; use one of ndcg, recall, precision, "
                              "map, hit_rate, mrr, coverage, optionally after a slice "
                              "('returning/ndcg').")
        value = flat[objective_key]
        trials.append({"number": trial.number, "params": params, "value": value})
        log.info("trial %d %s: %s=%.4f", trial.number, params, objective_key, value)
        if on_trial is not None:
            on_trial(trial.number, {**fixed, **params}, report.flat())
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(_defaults(REGISTRY[model_name], space))
    for point in START_POINTS.get(model_name, []):
        study.enqueue_trial({p: v for p, v in point.items() if p in space})
    study.optimize(objective, n_trials=n_trials if space else 1, timeout=timeout)
    return TuneResult(model_name, objective_key, {**fixed, **study.best_params},
                      float(study.best_value), trials, validation.split.summary())


__all__ = ["SEARCH_SPACES", "START_POINTS", "SCORE_TIME_PARAMS", "OnTrial", "TuneResult",
           "validation_split", "tune"]
