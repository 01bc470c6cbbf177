"""A tenant's slots of running jobs (``TTSBATCH_API_MAX_CONCURRENT_JOBS``).

A job takes a slot in the :class:`~scheduler.api.registry.Registry` when it is
submitted or retried; slots of jobs that have ended (by Redis's job state)
are given back as new ones are taken.
"""

from __future__ import annotations

from scheduler.api.errors import TooManyJobsError
from scheduler.api.services import Services
from ttsbatch.state import TERMINAL


def is_active(services: Services, job_id: str) -> bool:
    """Return whether a job is known to Redis and has not ended."""
    status = services.state.status(job_id)
    return status is not None and status not in TERMINAL


def reserve(services: Services, tenant: str, job_id: str, *, capped: bool) -> None:
    """Take a slot for a submitted job; without ``capped`` the tenant's cap does not apply.

    Raises:
        TooManyJobsError: the tenant is at its cap of running jobs.
    """
    cap = services.settings.api.max_concurrent_jobs if capped else 10**9
    if not _take(services, tenant, job_id, cap):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs (TTSBATCH_API_MAX_CONCURRENT_JOBS):"
            " wait for one to end, or cancel one with DELETE /v1/jobs/{id}"
        )


def reserve_retry(services: Services, tenant: str, job_id: str) -> None:
    """Take a slot for a retried job.

    Raises:
        TooManyJobsError: the tenant is at its cap of running jobs.
    """
    cap = services.settings.api.max_concurrent_jobs
    if not _take(services, tenant, job_id, cap):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs: wait for one to end before retrying"
        )


def _take(services: Services, tenant: str, job_id: str, cap: int) -> bool:
    return services.registry.reserve(tenant, job_id, cap, lambda job: not is_active(services, job))
