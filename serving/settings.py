"""Server settings from the environment (``RECSYS_*``), read through a cached ``get_settings``.

Keys come from the environment or from files (one key per line, ``#`` comments), so they can
be mounted as secrets. Each kind of key opens some scopes: client keys (``RECSYS_API_KEYS``)
those of ``RECSYS_API_KEY_SCOPES`` (default ``read`` and ``events``: a storefront), privacy
keys consent and erasure, the admin key ``/admin``; analyst keys (``RECSYS_ANALYST_KEYS``) open
only the read-only operator console (``/console``, whose admins use the admin key). A server
without client keys refuses to start unless ``RECSYS_INSECURE_NO_AUTH=true`` says so on
purpose (local experiments only).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_URI = "models:/loyalty-recsys@champion"
Scope = Literal["read", "events", "privacy", "admin", "analyst"]
SCOPES: tuple[Scope, ...] = ("read", "events", "privacy", "admin", "analyst")


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore", frozen=True)

    data_dir: Path = Path("data")
    # Where the model comes from: a bundle directory (dev, tests) or an MLflow model URI.
    bundle_path: Path | None = None
    model_uri: str = DEFAULT_MODEL_URI
    mlflow_tracking_uri: str | None = None  # default: sqlite:///<data_dir>/mlflow.db
    # A/B: this share of customers (stable hash) is served by the challenger.
    challenger_share: float = Field(0.0, ge=0.0, le=1.0)
    challenger_bundle_path: Path | None = None
    challenger_uri: str | None = None  # default: model_uri with alias "challenger"
    ab_salt: str = "loyalty-recsys"
    # faiss index over item vectors for /similar: exact inner product, or HNSW.
    index: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(64, ge=8)
    recall_queries: int = Field(500, ge=10)  # items used to measure HNSW recall vs exact
    warmup_requests: int = Field(20, ge=0)
    # With several workers, load the models once in the supervisor and fork the workers
    # from it: they share one copy of the bundle (serving/preload.py).
    preload_models: bool = True
    # Recent recommendation answers kept per worker, by customer (~2.4 KB each at n=10;
    # 0: rank every request). See recsys/policy/answers.py.
    answer_cache_customers: int = Field(10_000, ge=0)
    # Events.
    events_url: str | None = None  # default: sqlite:///<data_dir>/events.db
    # pick up what other workers and replicas stored: every 0.5 s keeps a change made through
    # one replica in the others' answers within 1 s (docs/reliability.md); one indexed query
    events_poll_seconds: float = Field(0.5, gt=0)
    max_events_per_batch: int = Field(1000, ge=1)
    # Log what each answer showed (recsys/exposures.py), off the request path.
    log_exposures: bool = True
    # Load shedding (serving/overload.py): requests in flight per worker beyond which new
    # ones get 503 + Retry-After at once instead of queueing (0: no limit). An admitted
    # request waits behind at most this many, so size it as the latency budget over the
    # server CPU time per request (docs/benchmarks/serving.md).
    max_in_flight: int = Field(32, ge=0)
    # Queueing delay: new requests get the 503 at once while the request first in line has
    # waited over half of this, and an admitted one whose turn comes later than this gets it
    # then (0: no bound). It holds the latency when the CPU the in-flight limit was sized for
    # is not there (other processes, or refusals, take it).
    max_wait_ms: int = Field(80, ge=0)
    retry_after_seconds: int = Field(1, ge=1)
    # uvicorn's own bound per worker (0: none): once open connections (idle keep-alive ones
    # included) or requests in progress reach it, it answers each new request 503 itself
    # (plain text, no Retry-After, connection closed) before the app sees it, so no route
    # (health included) is exempt. The listen backlog bounds connections not yet accepted.
    limit_concurrency: int = Field(0, ge=0)
    listen_backlog: int = Field(2048, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_cart_items: int = Field(200, ge=1)
    max_batch_customers: int = Field(100, ge=1)  # POST /v1/batch/recommendations
    # Event timestamps outside [earliest, now + latest_ahead_hours] are refused (422).
    event_time_earliest: datetime = datetime(2000, 1, 1)
    event_time_ahead_hours: float = Field(24.0, ge=0, le=24 * 366)
    # Security.
    api_keys: SecretStr | None = None  # comma-separated client keys (rotation: several)
    api_keys_file: Path | None = None
    api_key_scopes: frozenset[Literal["read", "events", "privacy"]] = frozenset(
        {"read", "events"})
    privacy_keys: SecretStr | None = None  # consent and erasure (a back office, not a shop)
    privacy_keys_file: Path | None = None
    admin_key: SecretStr | None = None
    admin_key_file: Path | None = None
    analyst_keys: SecretStr | None = None  # the console, read-only (CRM, support staff)
    analyst_keys_file: Path | None = None
    # The console's loyalty KPIs need the purchase history, which bundles do not carry: the
    # dataset to read (as `recsys customers kpis --dataset`; default: the bundle's dataset).
    console_dataset: str | None = None
    console_session_hours: float = Field(8.0, gt=0, le=24 * 7)
    console_export_max: int = Field(10_000, ge=1)  # customers in one picks download
    # The training config whose promotion rule the console's "promote" applies (the gate of
    # `recsys promote --config`; default: the built-in config).
    console_train_config: Path | None = None
    insecure_no_auth: bool = False
    # The secret of erasure records' keyed hashes; default: <data dir>/privacy.key for the
    # SQLite store, required for any other (see recsys/events.py).
    privacy_key: SecretStr | None = None

    @model_validator(mode="after")
    def _enforce_keys(self) -> Self:
        if not self.client_keys() and not self.insecure_no_auth:
            raise ValueError(
                "no API key configured: set RECSYS_API_KEYS or RECSYS_API_KEYS_FILE (or run "
                "`recsys serve --demo`); RECSYS_INSECURE_NO_AUTH=true disables auth on purpose")
        return self

    def client_keys(self) -> tuple[bytes, ...]:
        """Client API keys from the environment and the key file."""
        return _keys(self.api_keys, self.api_keys_file)

    def admin_keys(self) -> tuple[bytes, ...]:
        """Admin keys (empty tuple: admin routes are closed)."""
        return _keys(self.admin_key, self.admin_key_file)

    def keys_by_scope(self) -> dict[Scope, tuple[bytes, ...]]:
        """Every key that opens each scope."""
        client = self.client_keys()
        privacy = _keys(self.privacy_keys, self.privacy_keys_file)
        return {scope: (client if scope in self.api_key_scopes else ())
                + (privacy if scope == "privacy" else ())
                for scope in SCOPES if scope not in ("admin", "analyst")} | {
            "admin": self.admin_keys(),
            "analyst": _keys(self.analyst_keys, self.analyst_keys_file)}

    def events_database(self) -> str:
        """The event store URL."""
        return self.events_url or f"sqlite:///{self.data_dir.resolve() / 'events.db'}"

    def challenger_source(self) -> str | Path | None:
        """Where the challenger comes from, or None when A/B routing is off."""
        if self.challenger_share <= 0:
            return None
        if self.challenger_bundle_path is not None:
            return self.challenger_bundle_path
        if self.challenger_uri:
            return self.challenger_uri
        if self.bundle_path is None and "@" in self.model_uri:
            return self.model_uri.rsplit("@", 1)[0] + "@challenger"
        return None


def _keys(inline: SecretStr | None, file: Path | None) -> tuple[bytes, ...]:
    keys = inline.get_secret_value().split(",") if inline else []
    if file is not None:
        try:
            keys += file.read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read key file {file}: {exc.strerror}") from exc
    return tuple(k.strip().encode() for k in keys if k.strip() and not k.strip().startswith("#"))


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once (tests pass their own to ``create_app``)."""
    return Settings()


__all__ = ["Settings", "get_settings", "DEFAULT_MODEL_URI", "Scope", "SCOPES"]
