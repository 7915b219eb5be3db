"""Offline evaluation: metrics over ranked id arrays, ``evaluate`` on a temporal split, and
side-by-side comparisons of several models (tables and plots)."""

from recsys.evaluation.evaluate import (
    PROTOCOLS,
    SLICES,
    EvalData,
    Report,
    evaluate,
    new_arrival_references,
    prepare,
)
from recsys.evaluation.metrics import (
    PopularityCurve,
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from recsys.evaluation.report import Comparison, comparison_table, evaluate_many, to_markdown

__all__ = [
    "SLICES", "PROTOCOLS", "new_arrival_references", "EvalData", "Report", "evaluate", "prepare",
    "Comparison", "evaluate_many",
    "comparison_table", "to_markdown", "PopularityCurve", "ranking_metrics", "precision_at_k",
    "recall_at_k", "ndcg_at_k", "map_at_k", "hit_rate_at_k", "mrr_at_k", "catalog_coverage",
    "novelty", "intra_list_diversity", "popularity_bias",
]
