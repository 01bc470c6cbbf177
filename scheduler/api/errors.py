"""HTTP statuses of errors: the API's own, and the domain's (which carry none).

The API's service layer raises these; each carries its status and problem
code, and the three with a domain twin are that domain error too::

    TtsBatchError
    └── ApiError                  the request cannot be served as sent
        ├── NotFoundError         no such job, run or schedule for this tenant (404)
        │                         (also ttsbatch.errors.NotFoundError)
        ├── ConflictError         the resource is not in a state that allows it (409)
        ├── TooLargeError         the request or a job exceeds a limit (413)
        │                         (also ttsbatch.errors.LimitExceededError)
        ├── UnsupportedError      an unsupported media type or file format (415)
        ├── InvalidRequestError   a field is invalid: unknown engine/voice, bad cron (422)
        │                         (also ttsbatch.errors.InvalidFieldError)
        ├── TooManyJobsError      the tenant has too many jobs running (429)
        ├── UnauthorizedError     no or an unknown API key (401)
        └── NoWorkerError         no live worker serves the job's engine (503)

The scheduler domain (runs, schedules, webhooks) raises the ttsbatch tree
without statuses; :data:`DOMAIN_STATUSES` gives theirs, and
:mod:`scheduler.api.app` turns both into problem bodies. Every message says
what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from ttsbatch import errors
from ttsbatch.errors import TtsBatchError


class ApiError(TtsBatchError):
    """Raised when a request cannot be served as sent; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"


class NotFoundError(ApiError, errors.NotFoundError):
    """Raised when the tenant has no job, run or schedule of that id."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """Raised when a job's state forbids the action (a result of a running job)."""

    status = 409
    code = "conflict"


class GoneError(ApiError):
    """Raised for the files of a job whose lifetime passed (they were removed)."""

    status = 410
    code = "gone"


class TooLargeError(ApiError, errors.LimitExceededError):
    """Raised when a request body, a job's characters or its documents exceed a limit."""

    status = 413
    code = "too_large"


class UnsupportedError(ApiError):
    """Raised when a request's media type or an uploaded file's format is not supported."""

    status = 415
    code = "unsupported_format"


class InvalidRequestError(ApiError, errors.InvalidFieldError):
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


class ForbiddenError(ApiError):
    """Raised when a browser sends a change from another site's page."""

    status = 403
    code = "forbidden"


class NoWorkerError(ApiError):
    """Raised when no live worker consumes the queue a job's chunks (or stitch) would go to."""

    status = 503
    code = "no_worker"


#: Status and problem code of each domain error (subclasses included) that is no ApiError.
DOMAIN_STATUSES: Final[Mapping[type[TtsBatchError], tuple[int, str]]] = {
    errors.NotFoundError: (NotFoundError.status, NotFoundError.code),
    errors.LimitExceededError: (TooLargeError.status, TooLargeError.code),
    errors.InvalidFieldError: (InvalidRequestError.status, InvalidRequestError.code),
}
