"""The operator console: ``/console``, server-rendered pages for the loyalty team.

Overview, customers, coupons, experiments, customer lookup and actions, behind a login with
an admin or analyst key (``serving/console/auth.py``). Templates and the stylesheet ship
inside this package; charts are SVG drawn on the server (``charts.py``); nothing is loaded
from elsewhere. docs/console.md shows each page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from serving.console import auth
from serving.console.audit import FILE, AuditLog
from serving.console.data import ConsoleState
from serving.console.routes import HEADERS, page, router


async def _need_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/login", 303, headers=HEADERS)


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, auth.ConsoleError)
    return page(request, "error.html", auth.current(request), exc.status, message=exc.message,
                status_code=exc.status)


def install(app: FastAPI) -> None:
    """Add the console's routes, stylesheet, state and error pages to ``app``."""
    app.state.console = ConsoleState()
    app.state.console_audit = AuditLog(Path(app.state.settings.data_dir) / FILE)
    app.add_exception_handler(auth.NeedLogin, _need_login)
    app.add_exception_handler(auth.ConsoleError, _console_error)
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="console-static")


__all__ = ["install"]
