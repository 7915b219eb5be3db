"""Load the models once in the supervisor and fork the workers from it, so N workers share
one copy of the bundle (copy-on-write pages) instead of holding N.

uvicorn starts workers with ``spawn``: each imports everything and loads its own bundle
(0.95 GiB per worker for 1M customers). Here the supervisor loads the models (no threads, no
event store: those stay per worker), freezes them out of the garbage collector, and workers
are forked. A worker takes the preloaded models for its first load when they are still what
its settings point at (a bundle or champion replaced since is loaded afresh). Later reloads
load in each worker, as before: until the workers are restarted (``kill -HUP`` on the
supervisor), those copies are private.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any

from uvicorn import _subprocess
from uvicorn.supervisors import multiprocess

from recsys.errors import RecsysError
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.ab import Models

log = logging.getLogger(__name__)
_preloaded: Models | None = None


def preload(settings: Settings) -> bool:
    """Load the champion (and challenger) in this process before workers are forked;
    False (workers load their own, and report why) when that fails."""
    global _preloaded
    import faiss

    from serving.ab import Models
    from serving.loader import load_served

    # An OpenMP thread pool started here would not exist in the forked workers, and their
    # first parallel search would wait for it forever; the workers use one thread anyway
    # (serving.main.lifespan; the ranker predicts with num_threads=1).
    faiss.omp_set_num_threads(1)
    try:
        champion = load_served(settings, "champion", settings.bundle_path or settings.model_uri)
        source = settings.challenger_source()
        challenger = load_served(settings, "challenger", source) if source else None
    except RecsysError as exc:
        log.warning("preloading the models failed, each worker loads its own: %s", exc)
        return False
    _preloaded = Models(champion, challenger, settings.challenger_share, settings.ab_salt)
    gc.collect()
    gc.freeze()  # no collection in a worker walks (and so copies) the shared objects
    return True


def take(settings: Settings) -> Models | None:
    """The preloaded models, once, if they are still the current ones for ``settings``."""
    global _preloaded
    models, _preloaded = _preloaded, None
    if models is None or not all(_current(settings, s.source, s.version)
                                 for s in models.all()):
        return None
    if (models.challenger is None) != (settings.challenger_source() is None):
        return None
    return models


def _current(settings: Settings, source: str, version: str) -> bool:
    """Whether ``source`` still holds ``version``: the bundle directory's manifest, or the
    version an MLflow alias resolves to now."""
    if not source.startswith(("models:/", "runs:/")):
        try:
            manifest = json.loads((Path(source) / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        return str(manifest.get("model_version") or manifest.get("bundle_id")) == version
    if "@" not in source:
        return True  # a fixed version or run
    import mlflow
    from mlflow.tracking import MlflowClient

    from serving.loader import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(settings))
    name, alias = source.removeprefix("models:/").rsplit("@", 1)
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version) == version
    except Exception:  # the registry is unreachable: load as a worker would, and fail there
        return False


def _forked(config: Any, target: Any, sockets: list[socket]) -> Any:
    """uvicorn's worker process, forked instead of spawned (same arguments)."""
    return multiprocessing.get_context("fork").Process(
        target=_subprocess.subprocess_started,
        kwargs={"config": config, "target": target, "sockets": sockets, "stdin_fileno": None})


def fork_workers() -> None:
    """Make uvicorn's supervisor fork its workers (it calls this module-level function for
    every worker it starts or restarts)."""
    multiprocess.get_subprocess = _forked  # type: ignore[assignment]


__all__ = ["preload", "take", "fork_workers"]
