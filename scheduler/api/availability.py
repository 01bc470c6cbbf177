"""Whether a live worker serves a job's engine: refused when submitted, a warning while it waits.

Workers write a heartbeat of the queues they consume (:mod:`worker.presence`,
read through :class:`~ttsbatch.roster.Roster`); a job needs its engine's queue
and the finalize queue.
"""

from __future__ import annotations

from scheduler.api.catalog import ENGINES
from scheduler.api.errors import NoWorkerError
from scheduler.api.services import Services
from ttsbatch.manifests import find_manifest
from ttsbatch.messages import FINALIZE_QUEUE, queue_for
from ttsbatch.models import JobOptions, JobStatus
from ttsbatch.state import TERMINAL


def check_workers(services: Services, engine: str, job_id: str | None = None) -> None:
    """Refuse a job that no live worker would synthesise or stitch.

    A job already succeeded (``job_id``'s manifest) needs no worker. Skipped
    when ``TTSBATCH_API_REQUIRE_WORKERS`` is false (workers scaled from zero).

    Raises:
        NoWorkerError: naming the engine, the queue nobody reads, and the
            engines live workers do serve.
    """
    if not services.settings.api.require_workers:
        return
    needed = [queue_for(engine), FINALIZE_QUEUE]
    live = services.roster.live_queues({*needed, *(queue_for(e) for e in ENGINES)})
    missing = [queue for queue in needed if queue not in live]
    if not missing:
        return
    if job_id is not None:
        manifest = find_manifest(services.store, job_id)
        if manifest is not None and manifest.status is JobStatus.SUCCEEDED:
            return
    served = [e for e in ENGINES if queue_for(e) in live] if FINALIZE_QUEUE in live else []
    choice = (
        f"; engines served now: {', '.join(served)}" if served else "; no worker is running at all"
    )
    raise NoWorkerError(
        f"no running worker serves engine {engine}: nobody consumes queue"
        f" {' or '.join(missing)}. Start one (`ttsbatch worker --queues"
        f" {','.join(needed)}`), or send another `engine`{choice}"
    )


def waiting_reason(services: Services, status: JobStatus, options: JobOptions) -> str | None:
    """Return why a job still to run may wait (no live worker serves its engine), or None."""
    return None if status in TERMINAL else services.roster.waiting_reason(options.engine.engine)
