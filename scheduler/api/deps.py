"""Dependencies of the routes: the process's services and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scheduler.api.auth import KeyRing
from scheduler.api.errors import UnauthorizedError
from scheduler.api.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key: each key is a tenant.")


def get_services(request: Request) -> Services:
    """Return the services the app factory made."""
    services: Services = request.app.state.services
    return services


def get_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Return the caller's tenant.

    Raises:
        UnauthorizedError: no ``Authorization: Bearer <key>``, or an unknown key.
    """
    if credentials is None:
        raise UnauthorizedError("send your API key as `Authorization: Bearer <key>`")
    keyring: KeyRing = request.app.state.keyring
    tenant = keyring.tenant(credentials.credentials)
    if tenant is None:
        raise UnauthorizedError("unknown API key: check TTSBATCH_API_KEY")
    return tenant


ServicesDep = Annotated[Services, Depends(get_services)]
TenantDep = Annotated[str, Depends(get_tenant)]
