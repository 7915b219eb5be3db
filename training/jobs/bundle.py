"""The bundle of a training config: ``recsys.assembly`` with the config's model and files."""

from __future__ import annotations

from pathlib import Path

from recsys.assembly import assemble_bundle
from recsys.bundle import Bundle
from recsys.data.schema import RetailData
from recsys.models import make_model
from recsys.models.base import Recommender
from training.config import TrainConfig


def build_bundle(data: RetailData, cfg: TrainConfig, out_dir: str | Path,
                 manifest: dict[str, object] | None = None,
                 model: Recommender | None = None) -> Bundle:
    """Fit ``cfg.model`` on all of ``data`` and write the bundle to ``out_dir`` (``manifest``:
    extra entries, e.g. ``events_until``; ``model``: the same model already fitted on an
    earlier part of the data, refitted here with ``refit``)."""
    return assemble_bundle(
        data, out_dir, model if model is not None else make_model(cfg.model.name,
                                                                  **cfg.model.params),
        refit=model is not None, weighting=cfg.interactions.weighting,
        half_life_days=cfg.interactions.half_life_days, customers_config=cfg.customers_config,
        coupons=cfg.coupons, policy=cfg.policy, manifest=manifest)
