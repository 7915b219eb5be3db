"""loyalty-recsys's library: the names an application needs, importable from ``recsys``.

Load and clean data (``load_dataset``, ``clean``), split it (``temporal_split``), fit a model
(``make_model``), evaluate (``evaluate_many``), read a trained bundle (``read_bundle``) and
answer with ``Engine`` (the one pipeline of the API and batch picks); ``EventStore`` holds
events, consent and erasures. Every error is a ``RecsysError``. Anything else is internal and
may change. Names load on first use, so ``import recsys`` stays cheap (the CLI's ``--help``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOME = {
    "Engine": "recsys.policy.pipeline", "Pick": "recsys.policy.pipeline",
    "Result": "recsys.policy.pipeline",
    "Bundle": "recsys.bundle", "read_bundle": "recsys.bundle", "write_bundle": "recsys.bundle",
    "EventStore": "recsys.events", "Event": "recsys.events",
    "RetailData": "recsys.data.schema", "load_dataset": "recsys.data.load",
    "clean": "recsys.data.clean", "temporal_split": "recsys.data.split",
    "REGISTRY": "recsys.models", "make_model": "recsys.models",
    "evaluate_many": "recsys.evaluation",
    "RecsysError": "recsys.errors", "DataError": "recsys.errors",
    "BundleError": "recsys.errors", "ConfigError": "recsys.errors",
    "UnknownIdError": "recsys.errors",
}

if TYPE_CHECKING:
    from recsys.bundle import Bundle, read_bundle, write_bundle
    from recsys.data.clean import clean
    from recsys.data.load import load_dataset
    from recsys.data.schema import RetailData
    from recsys.data.split import temporal_split
    from recsys.errors import BundleError, ConfigError, DataError, RecsysError, UnknownIdError
    from recsys.evaluation import evaluate_many
    from recsys.events import Event, EventStore
    from recsys.models import REGISTRY, make_model
    from recsys.policy.pipeline import Engine, Pick, Result


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'recsys' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = ["BundleError", "Bundle", "ConfigError", "DataError", "Engine", "Event", "EventStore",
           "Pick", "REGISTRY", "RecsysError", "Result", "RetailData", "UnknownIdError", "clean",
           "evaluate_many", "load_dataset", "make_model", "read_bundle", "temporal_split",
           "write_bundle"]
