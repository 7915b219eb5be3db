"""Recommenders behind one protocol (DESIGN.md B3); ``REGISTRY`` maps config names to classes.

``make_model("als", factors=32)`` builds one from a config's ``model: {name, params}``.
"""

from __future__ import annotations

from typing import Any

from recsys.data.features import ItemFeatures
from recsys.models._reasons import Reason
from recsys.models.als import ALS
from recsys.models.base import Ranked, Recommender, RecommenderBase
from recsys.models.bpr import BPR
from recsys.models.buy_again import BuyAgain
from recsys.models.content import ContentTFIDF
from recsys.models.ease import EASE
from recsys.models.hybrid import Hybrid
from recsys.models.itemknn import ItemKNN
from recsys.models.popularity import Popularity, Trending
from recsys.models.ranker import LearnedRanker
from recsys.models.tifuknn import TIFUKNN

REGISTRY: dict[str, type[RecommenderBase]] = {
    "popularity": Popularity,
    "trending": Trending,
    "buyagain": BuyAgain,
    "itemknn": ItemKNN,
    "ease": EASE,
    "als": ALS,
    "bpr": BPR,
    "content": ContentTFIDF,
    "hybrid": Hybrid,
    "tifuknn": TIFUKNN,
    "ranker": LearnedRanker,
}


def make_model(name: str, **params: Any) -> RecommenderBase:
    """An unfitted model from its registry name and keyword hyper-parameters.

    Raises
    ------
    ValueError
        ``name`` is not in ``REGISTRY`` or a parameter is not one of the model's.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}.")
    try:
        return REGISTRY[name](**params)
    except TypeError as err:
        known = sorted(REGISTRY[name]().get_params())
        raise ValueError(f"bad parameters for model {name!r}: {err}; it takes {known}.") from err


__all__ = ["REGISTRY", "make_model", "ALS", "BPR", "BuyAgain", "ContentTFIDF", "EASE", "Hybrid",
           "ItemKNN", "LearnedRanker", "Popularity", "TIFUKNN", "Trending", "ItemFeatures",
           "Ranked", "Recommender", "RecommenderBase", "Reason"]
