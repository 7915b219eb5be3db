"""`recsys serve`: run the recommendation API with uvicorn."""

from __future__ import annotations

import copy
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training.commands.common import fail_cleanly

if TYPE_CHECKING:
    from serving.settings import Settings

DEMO_KEY, DEMO_PRIVACY_KEY, DEMO_ADMIN_KEY = "demo-api-key", "demo-privacy-key", \
    "demo-admin-key"


def _data_dir() -> Path:
    return Path(os.environ.get("RECSYS_DATA_DIR", "data")).resolve()


def _key_file(path: Path) -> str:
    """The key stored in ``path``, created (readable by the owner only) when missing."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def demo_keys(data_dir: Path) -> str | None:
    """Set up demo keys under ``data_dir`` unless keys are configured: a storefront key (read
    and events), a privacy key (consent and erasure) and an admin key. Returns the storefront
    key when it is a demo key (so a curl line can show it)."""
    for name, variable in ((DEMO_ADMIN_KEY, "RECSYS_ADMIN_KEY"),
                           (DEMO_PRIVACY_KEY, "RECSYS_PRIVACY_KEYS")):
        if not (os.environ.get(variable) or os.environ.get(f"{variable}_FILE")):
            _key_file(data_dir / name)
            os.environ[f"{variable}_FILE"] = str(data_dir / name)
    if os.environ.get("RECSYS_API_KEYS") or os.environ.get("RECSYS_API_KEYS_FILE"):
        return None
    key = _key_file(data_dir / DEMO_KEY)
    os.environ["RECSYS_API_KEYS_FILE"] = str(data_dir / DEMO_KEY)
    return key


def _log_config(level: str) -> dict[str, object]:
    """uvicorn's logging plus our packages at ``level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("serving", "recsys"):
        config["loggers"][name] = {"handlers": ["default"], "level": level.upper(),
                                   "propagate": False}
    return config


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(
            min=1, help="Worker processes (2 on a 2-core machine).")] = 1,
        bundle: Annotated[Path | None, typer.Option(
            exists=True, file_okay=False,
            help="Serve this bundle directory instead of the MLflow champion.")] = None,
        config: Annotated[Path | None, typer.Option(
            "--config", "-c", exists=True, dir_okay=False,
            help="Serve the champion of this training config's registered model (default: "
                 "RECSYS_MODEL_URI, else models:/loyalty-recsys@champion).")] = None,
        demo: Annotated[bool, typer.Option(
            help="Create demo API keys under the data dir if none are configured, check the "
                 "model can be fetched and print a working curl line.")] = False,
        log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    ) -> None:
        """Serve the recommendation API (the MLflow champion, or --bundle)."""
        from pydantic import ValidationError

        from serving.server import run
        from serving.settings import Settings

        if bundle is not None and config is not None:
            typer.echo("error: give --bundle or --config, not both", err=True)
            raise typer.Exit(2)
        data_dir = _data_dir()
        if bundle is not None:
            os.environ["RECSYS_BUNDLE_PATH"] = str(bundle.resolve())
        if config is not None:
            from training.config import load_config

            with fail_cleanly():
                name = load_config(config).registered_model
            os.environ["RECSYS_MODEL_URI"] = f"models:/{name}@champion"
        key = demo_keys(data_dir) if demo else None
        try:
            settings = Settings()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"RECSYS_{str(part).upper()}: " for part in first["loc"][:1])
            typer.echo(f"error: {where}{first['msg'].removeprefix('Value error, ')}", err=True)
            raise typer.Exit(2) from None
        source = settings.bundle_path or settings.model_uri
        base = f"http://{host}:{port}"
        customer = _demo_customer(settings, source) if demo else None
        if workers > 1:  # one /metrics view over all workers
            metrics_dir = data_dir / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        typer.echo(f"serving {source} on {base} ({workers} worker{'s' if workers > 1 else ''})"
                   f"; readiness: {base}/ready; API docs: {base}/docs")
        if demo:
            shown = key if key is not None else "$RECSYS_API_KEY"
            typer.echo(f'try: curl -H "X-API-Key: {shown}" '
                       f'"{base}/v1/customers/{customer}/recommendations?n=5"')
        run("serving.main:create_app", host=host, port=port, workers=workers,
            log_level=log_level, log_config=_log_config(log_level))


def _demo_customer(settings: Settings, source: str | Path) -> str:
    """A customer of the model to show in the curl line; exits with one line when the model
    cannot be fetched (e.g. no champion yet), rather than serving an unready demo."""
    from recsys.errors import BundleError
    from serving.loader import example_customer

    try:
        return example_customer(settings, source) or "any-customer-id"
    except BundleError as exc:
        hint = "" if settings.bundle_path else \
            " (`--config FILE` serves the champion of that config's registered model)"
        typer.echo(f"error: {exc}{hint}", err=True)
        raise typer.Exit(2) from None
