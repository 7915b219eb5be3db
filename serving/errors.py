"""Domain errors to HTTP statuses, in one place (httpx's ``map_exceptions`` idea).

Bad input is a 4xx with a sentence saying what is wrong, never a 500; a model that cannot be
loaded or used is a 503. Routers raise ``HTTPException`` for the cases only they know (an
unknown product in the path is a 404).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recsys.errors import (
    BundleError,
    ConfigError,
    DataError,
    NotFittedError,
    RecsysError,
    UnknownIdError,
)
from serving.schemas import ErrorPublic

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[RecsysError], int], ...] = (
    (BundleError, 503),
    (NotFittedError, 503),
    (UnknownIdError, 422),  # an unknown id in a query or body; path products -> 404 in routers
    (DataError, 422),
    (ConfigError, 422),
    (RecsysError, 422),
)


def status_for(exc: RecsysError) -> int:
    """The HTTP status of a domain error (most specific class first)."""
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def recsys_error(request: Request, exc: Exception) -> JSONResponse:
    """A ``RecsysError`` as ``{"detail": sentence, "request_id": ...}``."""
    assert isinstance(exc, RecsysError)
    code = status_for(exc)
    if code >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": str(exc), "request_id": _request_id(request)}, code)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: log the traceback (no request data) and answer a short 500."""
    log.exception("unhandled %s (request %s)", type(exc).__name__, _request_id(request))
    return JSONResponse({"detail": "internal error; the request id identifies it in the logs",
                         "request_id": _request_id(request)}, 500)


ANSWERS = {
    400: "The request body is not valid JSON",
    401: "No API key: send it in the X-API-Key header",
    403: "Wrong key (client keys do not open /admin)",
    413: "Request body over RECSYS_MAX_BODY_BYTES",
    422: "Invalid input: the list of invalid fields, or a sentence",
    503: "No model loaded or the event store is unavailable (see /ready)",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers ``codes``, so the contract lists every status a
    route can give (a route's own entry for the same code wins)."""
    return {code: {"model": ErrorPublic, "description": ANSWERS[code]} for code in codes}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RecsysError, recsys_error)
    app.add_exception_handler(Exception, unexpected_error)


__all__ = ["STATUS", "ANSWERS", "status_for", "documented", "install"]
