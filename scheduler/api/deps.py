"""Dependencies of the routes: the process's services and the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from scheduler.api.auth import SESSION_COOKIE, KeyRing
from scheduler.api.errors import UnauthorizedError
from scheduler.api.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key: each key is a tenant.")
_session = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The web page's session (POST /ui/session sets it): the same key, HttpOnly.",
)

#: Methods that change nothing: a cookie may authenticate them from any page of ours.
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def get_services(request: Request) -> Services:
    """Return the services the app factory made."""
    services: Services = request.app.state.services
    return services


def get_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_session)],
) -> str:
    """Return the caller's tenant, from ``Authorization: Bearer <key>`` or the session cookie.

    The header wins when both are sent. A cookie sent with a request that
    changes something (not GET or HEAD) must come from a page of this origin:
    SameSite=Strict keeps other sites' requests from carrying it, and the
    ``Origin`` check holds even for a browser that ignores SameSite.

    Raises:
        UnauthorizedError: no key, an unknown key, or a session cookie sent cross-origin.
    """
    keyring: KeyRing = request.app.state.keyring
    if credentials is not None:
        tenant = keyring.tenant(credentials.credentials)
        if tenant is None:
            raise UnauthorizedError("unknown API key: check TTSBATCH_API_KEY")
        return tenant
    if not session:
        raise UnauthorizedError(
            "send your API key as `Authorization: Bearer <key>` (or sign in at /ui/)"
        )
    if request.method not in _SAFE_METHODS and not same_origin(request):
        raise UnauthorizedError(
            "the session cookie came with a request from another site: send"
            " `Authorization: Bearer <key>` instead"
        )
    tenant = keyring.tenant(session)
    if tenant is None:
        raise UnauthorizedError("this session's key is no longer valid: sign in again at /ui/")
    return tenant


def same_origin(request: Request) -> bool:
    """Whether a request comes from our own pages (browsers say so on every POST, DELETE…).

    A browser's ``Sec-Fetch-Site`` (which no page can forge) decides when it is
    sent: a proxy that rewrites ``Host`` then breaks nothing. Otherwise the
    ``Origin`` is compared with the host by host and port only: behind a proxy
    that ends TLS the app sees ``http`` while the page's origin is ``https``. No
    ``Origin`` at all is not a browser's cross-site request (a script or an old
    client): accepted.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


ServicesDep = Annotated[Services, Depends(get_services)]
TenantDep = Annotated[str, Depends(get_tenant)]
