"""The console's pages and actions (``/console``): server-rendered HTML, no script.

Pages are ``GET``; everything that does something is a ``POST`` form with the session's CSRF
token: login, logout, a customer lookup (so the customer id never sits in a URL, a browser
history or an access log), reload, promote and the picks download. Reload and promote need
the admin role; analysts read, look up and download.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from serving.ab import Models
from serving.console import auth, charts, data
from serving.console.audit import FILE, AuditLog
from serving.console.auth import ConsoleError, Session
from serving.runtime import Runtime
from serving.schemas import storable

HERE = Path(__file__).parent
templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined))
templates.env.globals.update(charts=charts)
router = APIRouter(prefix="/console", include_in_schema=False)
SessionDep = Annotated[Session, Depends(auth.require_session)]
HEADERS = {
    "Cache-Control": "no-store",  # pages hold customer data: never cached
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY"}
NAME = re.compile(r"^[\w .@'-]{1,64}$")
PROMOTE_TIMEOUT = 300.0  # seconds; the gate reads two runs from MLflow


def page(request: Request, name: str, session: Session | None, status: int = 200,
         **context: Any) -> Response:
    """Render a template with the security headers every console answer carries."""
    return templates.TemplateResponse(request, name, {"session": session, **context},
                                      status_code=status, headers=HEADERS)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ConsoleError(503, "the server is starting")
    return runtime


def _models(request: Request) -> Models:
    runtime = _runtime(request)
    if runtime.models is None:
        reason = runtime.problems.get("model", "the model is loading")
        raise ConsoleError(503, f"no model loaded: {reason}")
    return runtime.models


def _state(request: Request) -> data.ConsoleState:
    return request.app.state.console  # type: ignore[no-any-return]


def _audit(request: Request) -> AuditLog:
    return request.app.state.console_audit  # type: ignore[no-any-return]


def _admin(session: Session) -> None:
    if not session.admin:
        raise ConsoleError(403, "this action needs the admin key; analyst keys are read-only")


# -- login ----------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request) -> Response:
    """The login form (already logged in: the overview)."""
    if auth.current(request) is not None:
        return RedirectResponse("/console", 303, headers=HEADERS)
    return _login_page(request, _disabled(request), 200)


def _disabled(request: Request) -> str | None:
    """Why nobody can log in, when no console key is configured."""
    keys = request.app.state.keys
    if keys["admin"] or keys["analyst"]:
        return None
    return "The console is disabled: set RECSYS_ADMIN_KEY or RECSYS_ANALYST_KEYS."


def _login_page(request: Request, error: str | None, status: int) -> Response:
    token = auth.login_token()
    response = page(request, "login.html", None, status, error=error, csrf=token)
    auth.set_login_cookie(request, response, token)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key; on success set the session cookie and go to the overview."""
    form = await auth.read_form(request)
    auth.check_login_token(request, form)
    name, key = form.get("name", "").strip(), form.get("key", "")
    if not NAME.match(name):
        return _login_page(request, "Give your name (1 to 64 letters, digits, spaces or . @ ' -"
                                    "): the audit log records who looked at what.", 422)
    if (disabled := _disabled(request)) is not None:
        return _login_page(request, disabled, 403)
    role = auth.role_of(request.app.state.keys, key) if key else None
    if role is None:
        return _login_page(request, "This key does not open the console.", 401)
    response = RedirectResponse("/console", 303, headers=HEADERS)
    auth.issue(request, response, role, name, key, request.app.state.settings
               .console_session_hours)
    response.delete_cookie(auth.LOGIN_COOKIE, path="/console/login")
    _audit(request).write(Session(role, name, auth.key_id(key), "", 0.0, ""), "login")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """End the session (CSRF-checked, so another site cannot log an operator out)."""
    auth.check_csrf(session, await auth.read_form(request))
    auth.revoke(session)
    _audit(request).write(session, "logout")
    response = RedirectResponse("/console/login", 303, headers=HEADERS)
    response.delete_cookie(auth.SESSION_COOKIE, path="/console", httponly=True,
                           samesite="strict")
    return response


# -- pages ----------------------------------------------------------------------------------
@router.get("")
def overview(request: Request, session: SessionDep) -> Response:
    """Live models, their offline metrics against the baselines, the API's live figures."""
    runtime, state = _runtime(request), _state(request)
    settings = request.app.state.settings
    models = runtime.models
    served = models.all() if models else []
    offline = {}
    for s in served:
        if data.registered_name(settings) is not None:
            slot = state.background.get(f"offline-{s.version}", s.version,
                                        lambda v=s.version: data.offline_metrics(settings, v))
            offline[s.variant] = slot
    return page(request, "overview.html", session, models=[data.model_summary(s) for s in served],
                offline=offline, registered=data.registered_name(settings),
                live=data.live_figures(request.app.state.metrics, state.rate),
                share=models.share if models else 0.0, reload=runtime.reload_status,
                problems=runtime.problems)


@router.get("/customers")
def customers(request: Request, session: SessionDep) -> Response:
    """Segments, the lifecycle funnel, churn risk, CLV and the loyalty KPIs."""
    runtime, models = _runtime(request), _models(request)
    settings, state = request.app.state.settings, _state(request)
    key = (models.champion.version, models.challenger.version if models.challenger else None)
    figures = state.memo.get(key)
    if figures is None:
        state.memo = {key: (figures := data.customer_figures(models))}
    dataset = data.kpi_dataset(settings, models)
    # an erasure changes the data the KPIs are computed on: recompute after one
    erased = len(runtime.store.erased_subjects()) if runtime.store else 0
    kpis = state.background.get("kpis", (dataset, models.champion.version, erased),
                                lambda: data.compute_kpis(dataset, runtime)) if dataset else None
    return page(request, "customers.html", session, fig=figures, kpis=kpis, dataset=dataset)


def _report(request: Request) -> data.Slot:
    runtime, settings = _runtime(request), request.app.state.settings
    metrics = request.app.state.metrics
    return _state(request).background.get(
        "experiments", "report", lambda: data.experiment_report(runtime, settings, metrics),
        ttl=data.REPORT_TTL)


@router.get("/coupons")
def coupons(request: Request, session: SessionDep) -> Response:
    """Per coupon: budget spent and left, issued, redeemed, rate, uplift over its holdout."""
    models = _models(request)
    slot = _report(request)
    return page(request, "coupons.html", session, rows=data.coupon_rows(models, slot.value),
                slot=slot, currency=models.champion.engine.coupon_chooser.catalog.currency
                if models.champion.engine.coupon_chooser else "")


@router.get("/experiments")
def experiments(request: Request, session: SessionDep) -> Response:
    """The experiment report: variants, differences with intervals, the SRM check."""
    _models(request)
    return page(request, "experiments.html", session, slot=_report(request))


@router.get("/lookup")
def lookup_form(request: Request, session: SessionDep) -> Response:
    """The lookup form."""
    return page(request, "lookup.html", session, found=None, asked="")


@router.post("/lookup")
async def lookup(request: Request, session: SessionDep) -> Response:
    """One customer as support staff may see them; every lookup is audited."""
    form = await auth.read_form(request)
    auth.check_csrf(session, form)
    customer_id = form.get("customer_id", "").strip()
    if not customer_id or len(customer_id) > 128:
        raise ConsoleError(422, "a customer id has 1 to 128 characters")
    try:
        storable(customer_id)
    except ValueError as exc:
        raise ConsoleError(422, str(exc)) from None
    runtime, models = _runtime(request), _models(request)
    found = await anyio.to_thread.run_sync(data.lookup, runtime, models, customer_id)
    outcome = "erased" if found["erased"] else "known" if found["known"] else "unknown"
    subject = runtime.store.subject(customer_id) if runtime.store else None
    _audit(request).write(session, "lookup", subject=subject, outcome=outcome)
    return page(request, "lookup.html", session, found=found, asked=customer_id)


@router.get("/actions")
def actions(request: Request, session: SessionDep) -> Response:
    """Reload, promote the challenger, download picks; the audit log (admins)."""
    return _done(request, session, None)


def _done(request: Request, session: Session, message: str | None, status: int = 200
          ) -> Response:
    """The actions page, with the outcome of the action just taken."""
    models = _models(request)
    return page(request, "actions.html", session, status, audiences=data.audiences(models),
                challenger=models.challenger.version if models.challenger else None,
                registered=data.registered_name(request.app.state.settings),
                reload=_runtime(request).reload_status, message=message,
                audit=_audit(request).read() if session.admin else [],
                export_max=request.app.state.settings.console_export_max)


@router.post("/actions/reload")
async def reload(request: Request, session: SessionDep) -> Response:
    """Reload the champion (and challenger) in every worker, as ``POST /admin/reload``."""
    auth.check_csrf(session, await auth.read_form(request))
    _admin(session)
    runtime = _runtime(request)
    status = await anyio.to_thread.run_sync(lambda: runtime.reload_and_wait(broadcast=True))
    _audit(request).write(session, "reload", outcome=status.state, error=status.error)
    return _done(request, session, f"Reload: {status.state}"
                 + (f" ({status.error})" if status.error else ""),
                 200 if status.state == "ok" else 503)


@router.post("/actions/promote")
async def promote(request: Request, session: SessionDep) -> Response:
    """Promote the live challenger through the gate of ``recsys promote``, then reload."""
    auth.check_csrf(session, await auth.read_form(request))
    _admin(session)
    models, settings = _models(request), request.app.state.settings
    if models.challenger is None:
        raise ConsoleError(409, "no challenger is live (RECSYS_CHALLENGER_SHARE is 0)")
    version = models.challenger.version
    if data.registered_name(settings) is None or not version.isdigit():
        raise ConsoleError(409, "promotion moves a registry alias: this server loads bundle "
                                "directories, not registered versions (RECSYS_MODEL_URI)")
    code, text = await anyio.to_thread.run_sync(run_promote, settings, version)
    _audit(request).write(session, "promote", version=version, exit_code=code, output=text)
    if code != 0:
        return _done(request, session, f"Promotion of v{version} failed: {text}", 502)
    if text.startswith(f"v{version} promoted:"):  # the command's verdict line
        await anyio.to_thread.run_sync(lambda: _runtime(request).reload_and_wait(broadcast=True))
    return _done(request, session, text)


def run_promote(settings: Any, version: str) -> tuple[int, str]:
    """``recsys promote --version <version>`` in a child process: the very gate the command
    applies, and serving stays free of ``training`` imports (docs/architecture.md)."""
    command = shutil.which("recsys", path=str(Path(sys.executable).parent)) or \
        shutil.which("recsys")
    if command is None:
        return 127, "the recsys command is not installed next to this server"
    env = dict(os.environ, RECSYS_DATA_DIR=str(settings.data_dir))
    env["MLFLOW_TRACKING_URI"] = settings.mlflow_tracking_uri or os.environ.get(
        "MLFLOW_TRACKING_URI") or f"sqlite:///{settings.data_dir.resolve() / 'mlflow.db'}"
    try:
        config = ["--config", str(settings.console_train_config)] \
            if settings.console_train_config else []
        done = subprocess.run([command, "promote", "--version", version, *config], env=env,
                              capture_output=True, text=True, timeout=PROMOTE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return 124, f"recsys promote took over {PROMOTE_TIMEOUT:.0f} s"
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return done.returncode, (lines[-1] if lines else "")[:500]


@router.post("/actions/export")
async def export(request: Request, session: SessionDep) -> Response:
    """Batch picks for an audience (segment, stage or tier) as a CSV download."""
    form = await auth.read_form(request)
    auth.check_csrf(session, form)
    models, settings = _models(request), request.app.state.settings
    field, _, value = form.get("audience", "").partition(":")
    choices = data.audiences(models)
    if field != "all" and value not in choices.get(field, []):
        raise ConsoleError(422, "choose an audience from the list")
    n, coupons = _int(form, "n", 10, 1, 50), _int(form, "coupons", 0, 0, 5)
    ids = data.audience_ids(models, field, value)
    if len(ids) > settings.console_export_max:
        raise ConsoleError(413, f"{len(ids):,} customers is over the console's limit of "
                                f"{settings.console_export_max:,} (RECSYS_CONSOLE_EXPORT_MAX); "
                                "use `recsys picks` for large audiences")
    body = await anyio.to_thread.run_sync(data.export_csv, models, ids.tolist(), n, coupons)
    _audit(request).write(session, "export", audience=f"{field}:{value}", customers=len(ids),
                          n=n, coupons=coupons)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{field}-{value}" if value else field)
    return Response(body, media_type="text/csv", headers=HEADERS | {
        "Content-Disposition": f'attachment; filename="picks-{label}-{stamp}.csv"'})


def _int(form: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = form.get(name, "").strip() or str(default)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConsoleError(422, f"{name} must be a whole number from {low} to {high}")
    return int(text)


__all__ = ["router", "templates", "page", "HEADERS", "run_promote", "FILE"]
