"""Routes of the web page: ``/ui/`` (sign-in or jobs), ``/ui/jobs/{id}`` (player), the session.

The session is the contract's cookie (:data:`~scheduler.api.auth.SESSION_COOKIE`):
HttpOnly, SameSite=Strict, Path=/, no Max-Age (it ends with the browser
session), Secure over https. The key travels only in the sign-in form's POST
body and in that cookie, never in a URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from scheduler.api.auth import SESSION_COOKIE, KeyRing
from scheduler.api.deps import ServicesDep, same_origin
from scheduler.api.errors import ForbiddenError
from scheduler.api.ui.pages import page

STATIC: Final = Path(__file__).resolve().parent / "static"
#: The longest API key a sign-in form may carry (keys are tokens, not essays).
MAX_KEY_CHARS: Final = 1000

router = APIRouter(prefix="/ui", include_in_schema=False)


class _Static(StaticFiles):
    """The page's files, revalidated on every load (``no-cache`` + ETag: 304s are cheap).

    Unversioned URLs (ES modules import each other by name), so an upgrade is
    seen at the next load rather than after some max-age.
    """

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Starlette's response (ETag, Last-Modified, 304), with our caching headers."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Add the page's routes and its static files (``/ui/static``) to ``app``."""
    app.include_router(router)
    app.mount("/ui/static", _Static(directory=STATIC), name="ui-static")


def _session_tenant(request: Request) -> str | None:
    """Return the tenant of the request's session cookie, or None (none, or an unknown key)."""
    key = request.cookies.get(SESSION_COOKIE)
    if not key:
        return None
    keyring: KeyRing = request.app.state.keyring
    return keyring.tenant(key)


def _safe_next(target: str | None) -> str:
    """Return where to go after signing in: a path of the page, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _sign_in(next_path: str = "/ui/", error: str = "", status: int = 200) -> Response:
    return page("signin", status, next=_safe_next(next_path), error=error)


@router.get("")
def ui_root() -> RedirectResponse:
    """The page lives at ``/ui/``."""
    return RedirectResponse("/ui/", status_code=308)


@router.get("/")
def jobs_page(request: Request, next: str | None = None) -> Response:
    """The jobs page when signed in, else the sign-in form."""
    if _session_tenant(request) is None:
        return _sign_in(next or "/ui/")
    return page("jobs")


@router.get("/jobs/{job_id}")
async def player_page(job_id: str, request: Request, services: ServicesDep) -> Response:
    """A job's player; signed out: sign in, then back here; not the tenant's job: 404."""
    tenant = _session_tenant(request)
    if tenant is None:
        back = quote(f"/ui/jobs/{job_id}", safe="/")
        return RedirectResponse(f"/ui/?next={back}", status_code=303)
    entry = await run_in_threadpool(services.registry.job, job_id, tenant)
    if entry is None:
        return page("missing", 404, job=job_id)
    return page("player", job=job_id, title=entry.name)


@router.post("/session")
async def sign_in(request: Request) -> Response:
    """Check the form's ``key``; keep it in the session cookie and go to ``next`` (or /ui/)."""
    form = await request.form(max_files=0, max_fields=4)
    key = str(form.get("key") or "").strip()
    next_path = _safe_next(str(form.get("next") or ""))
    if not same_origin(request):
        return _sign_in(next_path, "Sign in from this site's own page.", 403)
    keyring: KeyRing = request.app.state.keyring
    if not key or len(key) > MAX_KEY_CHARS or keyring.tenant(key) is None:
        return _sign_in(next_path, "That key is not one of this server's API keys.", 401)
    response = RedirectResponse(next_path, status_code=303)
    # No max_age/expires: a session cookie, gone when the browser session ends.
    # https://www.rfc-editor.org/rfc/rfc6265#section-5.3 (persistent-flag false)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _over_https(request: Request) -> bool:
    """Whether the browser reached us over https, also through a proxy that ends TLS.

    The proxy's ``X-Forwarded-Proto`` is believed here even from an untrusted
    peer: all it can do is mark the cookie Secure, which costs nothing over https.
    """
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _refuse_other_sites(request: Request) -> None:
    """Refuse a sign-out sent from another site's page (logout CSRF)."""
    if not same_origin(request):
        raise ForbiddenError("sign out from this site's own page")


def _signed_out(response: Response, request: Request) -> Response:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
    )
    return response


@router.post("/session/delete")
def sign_out_form(request: Request) -> Response:
    """Forget the session (the page's sign-out button) and show the sign-in form."""
    _refuse_other_sites(request)
    return _signed_out(RedirectResponse("/ui/", status_code=303), request)


@router.delete("/session", status_code=204)
def sign_out(request: Request) -> Response:
    """Forget the session."""
    _refuse_other_sites(request)
    return _signed_out(Response(status_code=204), request)
