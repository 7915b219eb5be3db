"""``create_app(settings)``: the FastAPI application. Nothing heavy happens at import.

Run it with ``recsys serve`` or ``uvicorn serving.main:create_app --factory``
(``serving.main:app`` also works: it is built on first access, not at import).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import faiss
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from serving import console, errors
from serving.metrics import Metrics, ObserveMiddleware
from serving.overload import InFlightLimitMiddleware
from serving.routers import (
    admin,
    cart,
    coupons,
    customers,
    events,
    health,
    popular,
    products,
    recommendations,
)
from serving.runtime import Runtime
from serving.security import BodyLimitMiddleware
from serving.settings import Settings, get_settings

log = logging.getLogger(__name__)
V1_ROUTERS = (recommendations, products, popular, cart, coupons, events, customers)  # scoped
DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc files, served by the app (no CDN)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the event store, load and warm up the models, then serve; stop the poller at
    shutdown. A model or store that cannot be loaded leaves the app unready, not dead."""
    runtime = Runtime(app.state.settings, app.state.metrics)
    faiss.omp_set_num_threads(1)  # concurrency comes from requests, not from one search
    await anyio.to_thread.run_sync(runtime.start)
    app.state.runtime = runtime
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(runtime.stop)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: the environment, via ``get_settings``)."""
    settings = settings or get_settings()
    app = FastAPIOffline(title="loyalty-recsys", version="1", lifespan=lifespan,
                         static_url=DOCS_ASSETS,
                         description="Product and coupon recommendations for retail loyalty.")
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.keys = settings.keys_by_scope()
    if not app.state.keys["admin"]:
        log.warning("no admin key configured: /admin routes are disabled")
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(InFlightLimitMiddleware, limit=settings.max_in_flight,
                       retry_after=settings.retry_after_seconds, shed=metrics.shed,
                       max_wait=settings.max_wait_ms / 1e3)
    app.add_middleware(ObserveMiddleware, metrics=metrics)  # outermost: sees every answer
    v1 = APIRouter(prefix="/v1", responses=errors.documented(400, 401, 403, 413, 422, 503))
    for module in V1_ROUTERS:
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(admin.router, prefix="/admin", responses=errors.documented(401, 403, 422))
    app.include_router(health.router)
    console.install(app)  # /console: the operator pages (admin or analyst key)
    return app


def __getattr__(name: str) -> Any:
    """``serving.main:app`` for uvicorn, built on first access from the environment."""
    if name == "app":
        return create_app()
    raise AttributeError(name)


__all__ = ["create_app", "lifespan"]
