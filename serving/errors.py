"""Domain errors to HTTP statuses, in one place (httpx's ``map_exceptions`` idea).

Bad input is a 4xx with a sentence saying what is wrong, never a 500; a model that cannot be
loaded or used is a 503. Routers raise ``HTTPException`` for the cases only they know (an
unknown product in the path is a 404).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
ECHO_BYTES = 1024  # input echoed back in a 422, over all of its errors
MAX_ERRORS = 20  # errors listed in one 422 (a 1,000-event batch may have 1,000)

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


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A 422 listing the invalid fields (``loc`` names each), with at most ``ECHO_BYTES`` of
    the input echoed back and non-finite numbers (NaN, Infinity) echoed as text."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    budget, detail = ECHO_BYTES, []
    for error in errors[:MAX_ERRORS]:
        item = {k: error[k] for k in ("type", "loc", "msg") if k in error}
        if "input" in error and budget > 0:
            item["input"], budget = _echo(error["input"], budget)
        detail.append(item)
    if len(errors) > MAX_ERRORS:
        detail.append({"type": "too_many_errors", "loc": ["body"],
                       "msg": f"{len(errors) - MAX_ERRORS} more errors not listed"})
    return JSONResponse({"detail": detail, "request_id": _request_id(request)}, 422)


def _echo(value: Any, budget: int) -> tuple[Any, int]:
    """``value`` as it can be sent back within ``budget`` characters: itself when it is
    small and plain JSON, else its JSON text cut to the budget."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    plain = _finite(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be sent as UTF-8: echo it escaped
        text, plain = json.dumps(value, default=str), False
    if len(text) <= budget and plain:
        return value, budget - len(text)
    cut = text[:budget]
    return cut + ("..." if len(cut) < len(text) else ""), budget - len(cut)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return isinstance(value, str | int | bool) or value is None


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The event store's database is away (a PostgreSQL restart, a lost connection, a
    SQLite lock held past its timeout): a 503 the client retries (event ids make a resend
    safe); the pool reconnects by itself once the database is back."""
    log.warning("event store unavailable (request %s): %s", _request_id(request),
                str(exc).splitlines()[0])
    return JSONResponse({"detail": "the event store is unavailable; retry shortly",
                         "request_id": _request_id(request)}, 503, headers={"Retry-After": "1"})


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
    app.add_exception_handler(RequestValidationError, invalid_request)
    for cls in (sa.exc.OperationalError, sa.exc.InterfaceError):  # connection-level failures
        app.add_exception_handler(cls, store_unavailable)
    app.add_exception_handler(Exception, unexpected_error)


__all__ = ["STATUS", "ANSWERS", "status_for", "store_unavailable", "documented", "install"]
