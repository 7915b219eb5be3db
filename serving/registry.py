"""The one download of a registered bundle from MLflow, for the server and training's jobs
alike (``recsys`` never imports MLflow, and ``serving`` never imports ``training``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from recsys.errors import BundleError


def download_bundle(uri: str, dst: str, tracking: str, only: str | None = None,
                    instead: str = "set RECSYS_BUNDLE_PATH") -> tuple[Path, str | None]:
    """The bundle directory of the model at ``uri`` (with just its file ``only`` when given)
    and the version an alias resolved to. The alias is resolved first, so the version
    reported is the one loaded. ``BundleError`` on failure, ending with ``instead`` (the
    caller's way to read a bundle directory without MLflow)."""
    # MLflow's defaults retry an unreachable server for ~4 minutes; fail in seconds instead
    # (the current model keeps serving) unless the operator chose otherwise. No progress
    # bars in server logs.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # heavy: only when loading from the registry
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking)
    version = None
    try:
        if uri.startswith("models:/") and "@" in uri:
            name, alias = uri.removeprefix("models:/").rsplit("@", 1)
            version = str(MlflowClient().get_model_version_by_alias(name, alias).version)
            uri = f"models:/{name}/{version}"
        if only is None:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))
        else:  # the MLmodel file says where the bundle is; the same layout below dst
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{uri}/MLmodel",
                                                             dst_path=dst)).parent
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri}/{_bundle_path(local, uri)}/{only}", dst_path=dst)
    except MlflowException as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            store = re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", tracking)  # no password
            raise BundleError(f"cannot fetch {uri} from MLflow at {store} ({first}); train "
                              f"and promote a model (`recsys retrain`) or {instead}.") from exc
        raise BundleError(f"MLflow did not answer for {uri} ({first[:300]}); check that it "
                          "runs at RECSYS_MLFLOW_TRACKING_URI / MLFLOW_TRACKING_URI, or "
                          f"{instead}.") from exc
    except BundleError:
        raise
    except Exception as exc:  # network, storage: any failure keeps the current model
        raise BundleError(f"cannot download {uri}: {type(exc).__name__}: {exc}") from exc
    return _bundle_in(local, uri), version


def _bundle_path(model_dir: Path, uri: str) -> str:
    """Where the ``bundle`` artifact is inside a pyfunc model. MLflow stores it under the
    logged folder's own name, so the path is read from the MLmodel file."""
    import yaml

    try:
        meta = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
        return str(meta["flavors"]["python_function"]["artifacts"]["bundle"]["path"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BundleError(f"{uri} has no 'bundle' artifact in its MLmodel file; it was not "
                          "logged by `recsys train`.") from exc


def _bundle_in(model_dir: Path, uri: str) -> Path:
    """The ``bundle`` directory of a downloaded pyfunc model, checked to be inside it."""
    relative = _bundle_path(model_dir, uri)
    bundle_dir = (model_dir / relative).resolve()
    if not bundle_dir.is_relative_to(model_dir.resolve()) or not bundle_dir.is_dir():
        raise BundleError(f"{uri}: bundle artifact path {relative!r} is not a directory "
                          "inside the model.")
    return bundle_dir


__all__ = ["download_bundle"]
