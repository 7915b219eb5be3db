"""Training's only MLflow code: the local store, run logging, registration and aliases."""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from recsys.events import EventStore, default_url

log = logging.getLogger(__name__)
CHAMPION = "champion"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")


def data_dir() -> Path:
    """The project's data dir (``RECSYS_DATA_DIR``, default ``./data``)."""
    return Path(os.environ.get("RECSYS_DATA_DIR", "data")).resolve()


def event_store() -> EventStore:
    """The API's event store (``RECSYS_EVENTS_URL``, default ``<data dir>/events.db``): the
    source of erasures and consent that training and batch picks must honour."""
    return EventStore(os.environ.get("RECSYS_EVENTS_URL") or default_url(data_dir()),
                      key=os.environ.get("RECSYS_PRIVACY_KEY"))


def setup(experiment: str) -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or the embedded SQLite store; return the
    experiment id (created with a local artifact folder when the store is local)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet CLI/cron
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI: decide "local" before it.
    local = not os.environ.get("MLFLOW_TRACKING_URI")
    if local:
        root = data_dir()
        root.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = (data_dir() / "mlartifacts").as_uri() if local else None
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_bundle_model(bundle_dir: Path, registered_model: str) -> str:
    """Log ``bundle_dir`` as a pyfunc model in the active run and register it; returns the
    new version number."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_CODE),
        artifacts={"bundle": str(bundle_dir)},
        registered_model_name=registered_model,
        signature=ModelSignature(inputs=Schema([ColSpec("string", "customer_id")]),
                                 params=ParamSchema([ParamSpec("n", "long", 10)])),
        # The model runs this project's code: name it instead of letting MLflow infer the
        # environment by importing everything, which takes seconds per run.
        pip_requirements=[f"loyalty-recsys=={metadata.version('loyalty-recsys')}"],
    )
    return str(info.registered_model_version)


def champion_version(registered_model: str, alias: str = CHAMPION) -> Any | None:
    """The model version behind ``alias``, or None when there is none yet."""
    try:
        return MlflowClient().get_model_version_by_alias(registered_model, alias)
    except MlflowException:
        return None


def fetch_bundle(registered_model: str, version: str | None, dst: Path,
                 only: str | None = None) -> tuple[Path, str]:
    """Download the bundle of ``version`` (default: the champion; just its file ``only`` when
    given) the way the server does (``serving.registry``); returns (dir, run id)."""
    from recsys.errors import BundleError
    from serving.registry import download_bundle

    uri = f"models:/{registered_model}/{version}" if version else \
        f"models:/{registered_model}@{CHAMPION}"
    which = f"version {version}" if version else f"alias {CHAMPION!r}"
    try:
        path, resolved = download_bundle(uri, str(dst), mlflow.get_tracking_uri(), only,
                                         instead="pass --bundle DIR")
        run_id = MlflowClient().get_model_version(registered_model, resolved or version).run_id
    except (BundleError, MlflowException) as exc:
        raise BundleError(f"cannot load {registered_model} {which}: {exc}") from exc
    return path, run_id
