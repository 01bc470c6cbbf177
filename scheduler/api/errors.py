"""Errors of the API's service layer; :mod:`scheduler.api.app` maps them to HTTP statuses.

::

    TtsBatchError
    └── ApiError                  the request cannot be served as sent
        ├── NotFoundError         no such job, run or schedule for this tenant (404)
        ├── ConflictError         the resource is not in a state that allows it (409)
        ├── TooLargeError         the request or a job exceeds a limit (413)
        ├── UnsupportedError      an unsupported media type or file format (415)
        ├── InvalidRequestError   a field is invalid: unknown engine/voice, bad cron (422)
        ├── TooManyJobsError      the tenant has too many jobs running (429)
        ├── UnauthorizedError     no or an unknown API key (401)
        └── NoWorkerError         no live worker serves the job's engine (503)

Every message says what to change.
"""

from __future__ import annotations

from typing import ClassVar

from ttsbatch.errors import TtsBatchError


class ApiError(TtsBatchError):
    """Raised when a request cannot be served as sent; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"


class NotFoundError(ApiError):
    """Raised when the tenant has no job, run or schedule of that id."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """Raised when a job's state forbids the action (a result of a running job)."""

    status = 409
    code = "conflict"


class TooLargeError(ApiError):
    """Raised when a request body, a job's characters or its documents exceed a limit."""

    status = 413
    code = "too_large"


class UnsupportedError(ApiError):
    """Raised when a request's media type or an uploaded file's format is not supported."""

    status = 415
    code = "unsupported_format"


class InvalidRequestError(ApiError):
    """Raised when a field is invalid: unknown engine or voice, bad cron, unreadable source."""

    status = 422
    code = "invalid_request"


class TooManyJobsError(ApiError):
    """Raised when a tenant already runs as many jobs as it may."""

    status = 429
    code = "too_many_jobs"


class UnauthorizedError(ApiError):
    """Raised when a request carries no API key, or one that is not ours."""

    status = 401
    code = "unauthorized"


class NoWorkerError(ApiError):
    """Raised when no live worker consumes the queue a job's chunks (or stitch) would go to."""

    status = 503
    code = "no_worker"
