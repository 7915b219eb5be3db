"""``POST /admin/reload``: load the new champion in the background and swap atomically;
``GET /admin/experiments``: the running experiment's results (``serving/experiments.py``)."""

from __future__ import annotations

from fastapi import Response

from serving.deps import MetricsDep, RequestIdDep, RuntimeDep, SettingsDep
from serving.experiments import ExperimentQueryDep, experiment_results
from serving.routers.health import model_list
from serving.schemas import ReloadPublic
from serving.security import scoped_router

router = scoped_router("admin", tags=["admin"])


@router.post("/reload", response_model=ReloadPublic, status_code=202, responses={
    200: {"model": ReloadPublic, "description": "wait=true: this worker's reload is over"}})
def reload(runtime: RuntimeDep, request_id: RequestIdDep, response: Response,
           wait: bool = False) -> ReloadPublic:
    """Reload the models in every worker; ``wait=true`` answers after this worker's swap."""
    if wait:
        started, status = True, runtime.reload_and_wait(broadcast=True)
        response.status_code = 200
    else:
        started, status = runtime.reload(broadcast=True), runtime.reload_status
    return ReloadPublic(started=started, reload=status.state, reload_error=status.error,
                        models=model_list(runtime), request_id=request_id)


@router.get("/experiments", responses={404: {"description": "No exposures logged yet"}})
def experiments(runtime: RuntimeDep, settings: SettingsDep, metrics: MetricsDep,
                query: ExperimentQueryDep) -> dict[str, object]:
    """Champion vs challenger and coupon uplift over holdouts from the exposure log: the
    JSON of `recsys experiments report` (docs/experiments.md)."""
    return experiment_results(runtime, settings, metrics, query)
