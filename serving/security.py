"""API keys: client keys for ``/v1``, a separate admin key for ``/admin``.

Keys travel in the ``X-API-Key`` header and are compared in constant time against every
configured key (several keys allow rotation). Missing key: 401; wrong key: 403. Keys are
never logged.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-API-Key"
client_key_header = APIKeyHeader(name=HEADER, scheme_name="ApiKey", auto_error=False,
                                 description="Client API key (RECSYS_API_KEYS)")
admin_key_header = APIKeyHeader(name=HEADER, scheme_name="AdminKey", auto_error=False,
                                description="Admin key (RECSYS_ADMIN_KEY)")


def key_matches(given: str, keys: tuple[bytes, ...]) -> bool:
    """Constant-time check of ``given`` against every key (no early exit)."""
    candidate = given.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key)
    return found


def _check(given: str | None, keys: tuple[bytes, ...], what: str) -> None:
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            f"missing {what}: send it in the {HEADER} header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if not keys or not key_matches(given, keys):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"invalid {what}")


async def require_client_key(request: Request,
                             key: Annotated[str | None, Security(client_key_header)]) -> None:
    """Dependency of every ``/v1`` route."""
    if request.app.state.settings.insecure_no_auth:
        return
    _check(key, request.app.state.client_keys, "API key")


async def require_admin_key(request: Request,
                            key: Annotated[str | None, Security(admin_key_header)]) -> None:
    """Dependency of every ``/admin`` route (client keys are refused)."""
    keys = request.app.state.admin_keys
    if not keys:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "admin routes are disabled: set RECSYS_ADMIN_KEY to enable them")
    _check(key, keys, "admin key")


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


__all__ = ["HEADER", "key_matches", "require_client_key", "require_admin_key",
           "BodyLimitMiddleware"]
