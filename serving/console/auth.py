"""Console sessions: a signed cookie per login, a CSRF token per session, two roles.

An ``admin`` key (``RECSYS_ADMIN_KEY``) or an ``analyst`` key (``RECSYS_ANALYST_KEYS``) logs
in once; the key is then never sent or shown again. The cookie holds the role, the name the
operator typed, a fingerprint of the key (for the audit log), an expiry and a random nonce,
signed with HMAC-SHA256 under a secret derived from that role's configured keys. Signed rather
than stored, so every worker process accepts it without shared state; rotating the role's keys
ends its sessions. Logout drops the cookie and revokes the nonce in this process.

The cookie is HttpOnly and SameSite=Strict (Secure over https). Every form that changes
something carries a CSRF token (an HMAC of the session nonce); the login form, before any
session exists, uses a double-submit token in its own short-lived cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from fastapi import Request
from starlette.responses import Response

from serving.security import key_matches

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = ("admin", "analyst")
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
PATH = "/console"
MAX_FORM_BYTES = 10_000  # console forms are a few short fields


class NeedLogin(Exception):
    """No valid session: the handler sends the browser to the login page."""


class ConsoleError(Exception):
    """A 4xx (or 503) answered as a console page saying what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Session:
    """Who is logged in: role, the name they gave, their key's fingerprint, the CSRF token."""

    role: Role
    name: str
    key_id: str
    nonce: str
    expires: float
    csrf: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


_revoked: dict[str, float] = {}  # nonce -> expiry, logouts seen by this process
_revoked_lock = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret(keys: dict[str, tuple[bytes, ...]], role: Role) -> bytes | None:
    """The signing secret of ``role``'s sessions (None when the role has no key)."""
    if not keys.get(role):
        return None
    return hashlib.sha256(b"recsys-console\0" + role.encode() + b"\0" +
                          b"\0".join(sorted(keys[role]))).digest()


def key_id(key: str) -> str:
    """A short fingerprint of a key for the audit log (the key itself is never written)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:10]


def role_of(keys: dict[str, tuple[bytes, ...]], given: str) -> Role | None:
    """The console role ``given`` opens (admin first), or None."""
    for role in ROLES:
        if keys.get(role) and key_matches(given, keys[role]):
            return role
    return None


def issue(request: Request, response: Response, role: Role, name: str, key: str,
          hours: float) -> None:
    """Set a new session cookie on ``response``."""
    payload = {"r": role, "n": name, "k": key_id(key), "e": time.time() + hours * 3600,
               "s": secrets.token_urlsafe(16)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    secret = _secret(request.app.state.keys, role)
    assert secret is not None  # the role's key just matched
    mac = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    response.set_cookie(SESSION_COOKIE, f"{body}.{mac}", max_age=int(hours * 3600), path=PATH,
                        httponly=True, samesite="strict", secure=_https(request))


def current(request: Request) -> Session | None:
    """The request's valid session, or None (absent, forged, expired or logged out)."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    body, _, mac = raw.partition(".")
    if not body or not mac or len(raw) > 1000:
        return None
    try:
        payload = json.loads(_unb64(body))
        role = payload["r"]
        if role not in ROLES:
            return None
        secret = _secret(request.app.state.keys, role)
        if secret is None or not hmac.compare_digest(
                _unb64(mac), hmac.new(secret, body.encode(), hashlib.sha256).digest()):
            return None
        expires, nonce = float(payload["e"]), str(payload["s"])
        name, kid = str(payload["n"]), str(payload["k"])
    except (ValueError, KeyError, TypeError):  # not base64, not JSON, missing fields
        return None
    if expires < time.time():
        return None
    with _revoked_lock:
        if nonce in _revoked:
            return None
    csrf = _b64(hmac.new(secret, b"csrf\0" + nonce.encode(), hashlib.sha256).digest())
    return Session(role, name, kid, nonce, expires, csrf)


async def require_session(request: Request) -> Session:
    """Dependency: the logged-in session, else off to the login page."""
    session = current(request)
    if session is None:
        raise NeedLogin()
    return session


def revoke(session: Session) -> None:
    """Logout: this session's cookie is refused from now on (in this process)."""
    now = time.time()
    with _revoked_lock:
        for nonce in [n for n, until in _revoked.items() if until < now]:
            del _revoked[nonce]  # expired sessions are refused anyway
        _revoked[session.nonce] = session.expires


def login_token() -> str:
    """A fresh token for the login form (double submit: also sent as a cookie)."""
    return secrets.token_urlsafe(16)


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    """The login form's token as a short-lived cookie of the login path only."""
    response.set_cookie(LOGIN_COOKIE, token, max_age=1800, path=f"{PATH}/login",
                        httponly=True, samesite="strict", secure=_https(request))


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each; an empty body is an empty form,
    so it fails the CSRF check); 415/413 for anything else."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise ConsoleError(415, "send the console's own form (application/x-www-form-urlencoded)")
    if len(body) > MAX_FORM_BYTES:
        raise ConsoleError(413, f"a console form is at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConsoleError(400, f"the form could not be read: {exc}") from None
    return {k: v[0] for k, v in fields.items()}


def check_csrf(session: Session, form: dict[str, str]) -> None:
    """403 unless the form carries this session's CSRF token."""
    given = form.get("csrf", "")
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise ConsoleError(403, "missing or wrong CSRF token: reload the page and try again")


def check_login_token(request: Request, form: dict[str, str]) -> None:
    """403 unless the login form's token matches its cookie."""
    cookie, given = request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf", "")
    if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise ConsoleError(403, "the login form expired or lacks its CSRF token: reload it")


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


__all__ = ["Role", "ROLES", "Session", "NeedLogin", "ConsoleError", "SESSION_COOKIE",
           "LOGIN_COOKIE", "issue", "current", "require_session", "revoke", "login_token",
           "set_login_cookie", "read_form", "check_csrf", "check_login_token", "role_of", "key_id"]
