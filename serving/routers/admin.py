"""``POST /admin/reload``: load the new champion in the background and swap atomically."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import RequestIdDep, RuntimeDep
from serving.routers.health import model_list
from serving.schemas import ReloadPublic

router = APIRouter(tags=["admin"])


@router.post("/reload", response_model=ReloadPublic, status_code=202, responses={
    200: {"model": ReloadPublic, "description": "wait=true: this worker's reload is over"}})
def reload(runtime: RuntimeDep, request_id: RequestIdDep, response: Response,
           wait: bool = False) -> ReloadPublic:
    """Reload the models in every worker; ``wait=true`` answers after this worker's swap."""
    started = runtime.reload(wait=wait, broadcast=True)
    if wait:
        response.status_code = 200
    status = runtime.reload_status
    return ReloadPublic(started=started, reload=status.state, reload_error=status.error,
                        models=model_list(runtime), request_id=request_id)
