"""Dependencies as ``Annotated`` aliases; they read what the lifespan put in ``app.state``.

They are ``async def`` on purpose: they only read attributes, and a sync dependency would cost
a thread-pool hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator

from serving.ab import Models
from serving.metrics import Metrics
from serving.runtime import Runtime
from serving.schemas import N_MAX, storable
from serving.settings import Settings

ID_MAX = 128


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the server is starting")
    return runtime  # type: ignore[no-any-return]


async def get_models(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Models:
    models = runtime.models
    if models is None:
        reason = runtime.problems.get("model", "the model is loading")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {reason}")
    return models


async def get_journal(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Runtime:
    """The runtime, when its event store is open (writes of events, consent, erasure)."""
    if runtime.store is None:
        reason = runtime.problems.get("events", "not open")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"the event store is unavailable: {reason}")
    return runtime


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ModelsDep = Annotated[Models, Depends(get_models)]
JournalDep = Annotated[Runtime, Depends(get_journal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RequestIdDep = Annotated[str, Depends(get_request_id)]

CustomerId = Annotated[str, Path(min_length=1, max_length=ID_MAX, description="Customer id"),
                      AfterValidator(storable)]
ProductId = Annotated[str, Path(min_length=1, max_length=ID_MAX, description="Product id")]
N = Annotated[int, Query(ge=1, le=N_MAX, description="How many results")]
Category = Annotated[str | None, Query(min_length=1, max_length=200,
                                       description='Category path prefix, e.g. "GROCERY"')]

__all__ = ["SettingsDep", "RuntimeDep", "ModelsDep", "JournalDep", "MetricsDep", "RequestIdDep",
           "CustomerId", "ProductId", "N", "Category", "ID_MAX"]
