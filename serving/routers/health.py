"""``/health`` (the process answers), ``/ready`` (model loaded, store open), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import MetricsDep
from serving.runtime import Runtime
from serving.schemas import HealthPublic, ModelPublic, ReadyPublic

router = APIRouter(tags=["operations"])


def model_list(runtime: Runtime) -> list[ModelPublic]:
    """The live models as shown on /ready and /admin/reload."""
    if runtime.models is None:
        return []
    return [ModelPublic(variant=m.variant, model_version=m.version,
                        model=m.engine.model.name, n_items=m.engine.n_items,
                        index=m.index.kind if m.index else None,
                        index_recall=m.index.recall if m.index else None)
            for m in runtime.models.all()]


@router.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """Liveness: the process answers."""
    return HealthPublic()


@router.get("/ready", response_model=ReadyPublic, responses={503: {"model": ReadyPublic}})
async def ready(request: Request, response: Response) -> ReadyPublic:
    """Readiness: 200 once a model is loaded and warmed up and the event store is open."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        response.status_code = 503
        return ReadyPublic(ready=False, models=[], challenger_share=0.0, reload="loading")
    status = runtime.reload_status
    if not runtime.ready:
        response.status_code = 503
    return ReadyPublic(ready=runtime.ready, models=model_list(runtime),
                       challenger_share=runtime.models.share if runtime.models else 0.0,
                       reload=status.state, reload_error=status.error,
                       problems=dict(runtime.problems))


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: latency per route and variant, fallbacks, model versions."""
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
