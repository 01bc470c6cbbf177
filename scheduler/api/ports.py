"""The scheduler domain's ports, filled in with the API's services.

The API's routes take them as :data:`PortsDep`; ``ttsbatch beat`` makes its
own with :func:`connect_ports` (the tenant index, the source reader and job
submission live in this package today).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from scheduler.api.services import Services
from scheduler.api.sources import Upload, from_upload
from scheduler.api.submission import submit_job
from scheduler.models import JobSpec
from scheduler.ports import Ports, SourceFile
from scheduler.rescue import rescue_active
from ttsbatch.settings import Settings


def ports_of(services: Services) -> Ports:
    """Return the domain's ports on ``services``."""

    def submit(tenant: str, document: SourceFile, spec: JobSpec, *, run_id: str) -> str:
        ingested = from_upload(Upload(document.filename, document.data))
        named = spec.model_copy(update={"name": spec.name or ingested.name})
        # A run is one request: its jobs queue behind each other, outside the tenant's cap.
        return submit_job(services, tenant, [ingested], named, run_id=run_id, capped=False)

    return Ports(
        settings=services.settings,
        store=services.store,
        state=services.state,
        index=services.registry,
        list_source=services.sources.list,
        read_source=lambda url, max_bytes: services.sources.read(url, max_bytes).data,
        submit=submit,
        rescue=lambda: rescue_active(services.store, services.state, services.producer),
    )


def connect_ports(settings: Settings) -> Ports:
    """Open the services ``settings`` name (lazily) and return the ports on them."""
    return ports_of(Services.connect(settings))


def get_ports(request: Request) -> Ports:
    """Return the ports the app factory made."""
    ports: Ports = request.app.state.ports
    return ports


PortsDep = Annotated[Ports, Depends(get_ports)]
