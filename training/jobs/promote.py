"""Promotion gate: move the ``champion`` alias only to a version that beats it on the same split.

A version's evaluation lives in its run: metric ``<metric>`` for the model itself and
``baseline.<name>.<metric>`` for each baseline, plus the tag ``split_fingerprint`` (dataset hash
and cut date). Versions evaluated on different splits are not compared: ``recsys retrain``
re-evaluates the champion's configuration on the new split and passes that score in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from recsys.errors import RecsysError
from training.tracking import CHAMPION, champion_version

CHALLENGER = "challenger"  # the alias the API serves to its challenger share

log = logging.getLogger(__name__)


def mlflow_key(metric: str) -> str:
    """MLflow metric names cannot hold '@': ``ndcg@10`` is logged as ``ndcg_at_10``."""
    return metric.replace("@", "_at_")


@dataclass(frozen=True)
class Decision:
    """What promotion did and why (printed by the CLI, tagged on the version)."""

    promoted: bool
    version: str
    champion: str | None
    reason: str


def _run_metrics(client: MlflowClient, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    run = client.get_run(run_id)
    return dict(run.data.metrics), dict(run.data.tags)


def promote(registered_model: str, version: str | None = None, *, metric: str = "ndcg@10",
            margin: float = 0.0, must_beat: tuple[str, ...] = ("popularity",),
            force: bool = False, champion_score: float | None = None) -> Decision:
    """Point ``champion`` at ``version`` (default: the newest) if it earns it.

    ``champion_score`` overrides the current champion's logged score (used when the caller
    re-evaluated the champion on the candidate's split).
    """
    client = MlflowClient()
    if version is None:
        versions = client.search_model_versions(f"name='{registered_model}'")
        if not versions:
            raise RecsysError(f"no versions of {registered_model!r} are registered; "
                              "run `recsys train` first.")
        version = str(max(int(v.version) for v in versions))
    candidate = client.get_model_version(registered_model, version)
    scores, tags = _run_metrics(client, candidate.run_id)
    key = mlflow_key(metric)
    if key not in scores:
        raise RecsysError(f"version {version} has no {metric!r} metric logged.")
    score = scores[key]
    current = champion_version(registered_model)
    champion = None if current is None else str(current.version)

    if champion == version:
        return Decision(False, version, champion, f"v{version} is already the champion")
    reason = _gate(client, score, scores, tags, current, key, metric, margin, must_beat,
                   champion_score)
    promoted = reason is None or force
    if reason is None:
        reason = (f"{metric} {score:.4f}: first champion" if champion is None else
                  f"{metric} {score:.4f} beats champion v{champion} "
                  f"{_how_scored(champion_score)}, margin {margin}")
    elif force:
        reason = f"forced despite: {reason}"
    if promoted:
        client.set_registered_model_alias(registered_model, CHAMPION, version)
    client.set_model_version_tag(registered_model, version, "promotion",
                                 ("promoted" if promoted else "rejected") + ": " + reason)
    if force:
        client.set_model_version_tag(registered_model, version, "promotion_forced", "true")
    log.info("promotion of v%s: %s", version, reason)
    return Decision(promoted, version, champion, reason)


def promote_from_experiment(registered_model: str, result: Mapping[str, Any],
                            metric: str = "revenue_per_customer") -> Decision:
    """Point ``champion`` at the version behind alias ``challenger`` when the online
    experiment ``result`` (``recsys experiments report``'s JSON) shows it wins on ``metric``
    with its interval above zero and no guardrail worse (``recsys.experiments.decision``).
    The experiment must have measured exactly these two versions."""
    from recsys.experiments.decision import decide

    client = MlflowClient()
    challenger = champion_version(registered_model, CHALLENGER)
    if challenger is None:
        raise RecsysError(f"{registered_model!r} has no {CHALLENGER!r} alias: nothing to "
                          "promote from an experiment.")
    version = str(challenger.version)
    current = champion_version(registered_model)
    champion = None if current is None else str(current.version)
    variants = result.get("variants", {})
    for role, expected in ((result.get("treatment"), version), (result.get("control"), champion)):
        measured = variants.get(role, {}).get("model_versions", [])
        if measured != [expected]:
            raise RecsysError(f"the experiment measured {role} version(s) {measured}, but the "
                              f"alias now points at v{expected}; report on the period when "
                              "both versions served (recsys experiments report --since).")
    try:
        verdict = decide(result, metric)
    except (KeyError, ValueError) as exc:
        raise RecsysError(f"not an experiment report ({exc})") from exc
    reason = f"online experiment: {verdict}"
    if verdict.promote:
        client.set_registered_model_alias(registered_model, CHAMPION, version)
    client.set_model_version_tag(registered_model, version, "promotion",
                                 ("promoted" if verdict.promote else "rejected") + ": " + reason)
    log.info("promotion of v%s from the experiment: %s", version, reason)
    return Decision(verdict.promote, version, champion, reason)


def _gate(client: MlflowClient, score: float, scores: dict[str, float], tags: dict[str, str],
          current: object, key: str, metric: str, margin: float, must_beat: tuple[str, ...],
          champion_score: float | None) -> str | None:
    """None if the candidate passes, else the sentence saying why not."""
    for name in must_beat:
        base = scores.get(f"baseline.{name}.{key}")
        if base is None:
            return f"no {name} baseline score was logged to compare with"
        if score <= base:
            return f"{metric} {score:.4f} does not beat the {name} baseline ({base:.4f})"
    if current is None:
        return None
    how = _how_scored(champion_score)
    if champion_score is None:
        champ_scores, champ_tags = _run_metrics(client, current.run_id)  # type: ignore[attr-defined]
        if champ_tags.get("split_fingerprint") != tags.get("split_fingerprint"):
            return ("the champion was evaluated on a different split; run `recsys retrain`, "
                    "which re-evaluates both on the same split")
        champion_score = champ_scores.get(key)
        if champion_score is None:
            return f"the champion has no {metric!r} metric to compare with"
    if score <= champion_score + margin:
        return (f"{metric} {score:.4f} does not beat the champion's {champion_score:.4f} "
                f"{how}, margin {margin}")
    return None


def _how_scored(champion_score: float | None) -> str:
    """Which champion score the gate compared with: re-scored by the caller, or logged."""
    return "on the same split" if champion_score is None else \
        "re-scored on this run's split (the data changed)"
