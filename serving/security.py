"""API keys with scopes, checked before the request body is read.

Keys travel in the ``X-API-Key`` header and are compared in constant time against every
configured key (several keys allow rotation). Each key opens some scopes
(``serving.settings.SCOPES``): ``read`` (recommendations, similar, popular, coupons, cart),
``events``, ``privacy`` (consent, erasure) and ``admin``. Missing key: 401; wrong key, or a
key without the route's scope: 403. Keys are never logged.

Each router declares its scope (``scoped_router``): a ``require(scope)`` dependency, which
also documents the key in OpenAPI, and ``AuthRoute``, which runs that check before FastAPI
parses the body, so a caller without a key learns nothing from a malformed body (FastAPI
itself reads the body before it solves any dependency).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Security, status
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.settings import Scope as KeyScope

HEADER = "X-API-Key"
key_header = APIKeyHeader(name=HEADER, scheme_name="ApiKey", auto_error=False,
                          description="API key with the route's scope (read, events, privacy "
                                      "or admin; see RECSYS_API_KEYS and friends)")


def key_matches(given: str, keys: tuple[bytes, ...]) -> bool:
    """Constant-time check of ``given`` against every key (no early exit)."""
    candidate = given.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key)
    return found


def authorize(request: Request, scope: KeyScope) -> None:
    """Raise 401/403 unless the request's key opens ``scope``."""
    keys: dict[str, tuple[bytes, ...]] = request.app.state.keys
    if scope != "admin" and request.app.state.settings.insecure_no_auth:
        return
    if scope == "admin" and not keys["admin"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "admin routes are disabled: set RECSYS_ADMIN_KEY to enable them")
    given = request.headers.get(HEADER)
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            f"missing API key: send it in the {HEADER} header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if key_matches(given, keys[scope]):
        return
    if any(key_matches(given, other) for other in keys.values()):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"this key does not open the {scope!r} scope")
    raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API key")


def require(scope: KeyScope) -> Callable[..., Coroutine[Any, Any, None]]:
    """The dependency that guards a route (or router) with ``scope``."""
    async def check(request: Request,
                    _key: Annotated[str | None, Security(key_header)] = None) -> None:
        if not request.scope.get("recsys.authorized"):  # AuthRoute did it already
            authorize(request, scope)

    check.scope = scope  # type: ignore[attr-defined]
    check.__name__ = f"require_{scope}"
    return check


require_client_key = require("read")
require_admin_key = require("admin")


def route_scopes(route: APIRoute) -> list[KeyScope]:
    """The scopes a route's ``require`` dependencies ask for."""
    return [d.dependency.scope for d in route.dependencies  # type: ignore[attr-defined]
            if hasattr(d.dependency, "scope")]


FastPath = Callable[[Request, APIRoute], Response | None]


class AuthRoute(APIRoute):
    """A route that checks its key scopes before the body is read (the scopes come from
    the ``require`` dependencies of the route and of its own router).

    An endpoint may carry a ``fast_path(request, route)``: it answers the plain requests
    itself and returns None for any other, which then goes through FastAPI's handler (whose
    parameter parsing and dependencies were the largest part of the HTTP stack's CPU,
    docs/benchmarks/serving.md); errors, and so their messages, stay FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        scopes = route_scopes(self)
        fast: FastPath | None = getattr(self.endpoint, "fast_path", None)
        if not scopes and fast is None:
            return handler

        async def checked(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope)
            request.scope["recsys.authorized"] = True
            if fast is not None and (response := fast(request, self)) is not None:
                return response
            return await handler(request)

        return checked


def scoped_router(scope: KeyScope, **options: Any) -> APIRouter:
    """An ``APIRouter`` whose every route needs a key that opens ``scope``."""
    return APIRouter(route_class=AuthRoute, dependencies=[Depends(require(scope))], **options)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 that names the limit.

    A declared ``Content-Length`` is checked before anything is read; a body without one
    (chunked) is read up to the limit first and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send, f"request body of {int(declared)} bytes is over the "
                                         f"{self.max_bytes}-byte limit")
                return
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(send, f"request body is over the {self.max_bytes}-byte "
                                         "limit")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


__all__ = ["HEADER", "key_matches", "authorize", "require", "require_client_key",
           "require_admin_key", "route_scopes", "FastPath", "AuthRoute", "scoped_router",
           "BodyLimitMiddleware"]
