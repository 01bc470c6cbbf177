"""The one exception tree of ttsbatch.

Every error a caller may handle derives from :class:`TtsBatchError`. The tree is
split by what the caller does next::

    TtsBatchError
    ├── InputError                  fix the input, then run again
    │   ├── UnsafeInputError        the input looks hostile; it was refused
    │   ├── InvalidFieldError       a field of a request is invalid (bad cron, empty prefix)
    │   ├── LimitExceededError      too large or too many: split it, then send again
    │   └── BudgetError             it would cost more than its cap: raise the cap or trim it
    ├── NotFoundError               no such job, run or schedule (for this caller)
    ├── ConfigError                 fix a setting or flag, then run again
    ├── StorageError                the store failed (a key outside the store, a short part)
    │   ├── TransientStorageError   a fault that may pass (5xx, timeout, lost connection): retry
    │   ├── ObjectNotFoundError     no object at the key: retrying will not make one
    │   └── StoreAccessError        no bucket, rejected credentials, 403: fix the configuration
    │                               (also a ConfigError), said once, never retried
    ├── BrokerError                 Redis (broker, job state) cannot be reached: try again later
    ├── EngineError                 a speech engine or provider failed
    │   ├── RetryableEngineError    try the same request again later
    │   │   └── RateLimitedError    the provider asked us to slow down
    │   └── PermanentEngineError    the same request will fail again
    │       └── FatalEngineError    no request can succeed: stop the whole job
    │           ├── AuthenticationError
    │           └── QuotaExceededError
    └── JobError                    a job as a whole failed or was cancelled

Edge modules translate library exceptions (httpx, botocore, redis) into this
tree; only the CLI and the API turn it into exit codes and HTTP statuses.
"""

from __future__ import annotations


class TtsBatchError(Exception):
    """Root of every ttsbatch error; its message is meant for the user."""


class InputError(TtsBatchError):
    """Raised when an input document is missing, empty, undecodable or malformed."""


class UnsafeInputError(InputError):
    """Raised when an input looks hostile (zip bomb, external entity, `../` path)."""


class InvalidFieldError(InputError):
    """Raised when a field of a request is invalid: a bad cron, an s3:// prefix with no documents."""


class LimitExceededError(InputError):
    """Raised when a request exceeds a limit: too many documents in a run, a file too large."""


class BudgetError(LimitExceededError):
    """Raised when a job would bill more than its cap; nothing was sent (the message has the estimate)."""


class NotFoundError(TtsBatchError):
    """Raised when there is no job, run or schedule of that id (for this tenant)."""


class ConfigError(TtsBatchError):
    """Raised when a setting, flag or option is invalid or missing."""


class StorageError(TtsBatchError):
    """Raised when the store (local folder or S3) cannot read or write an object."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class TransientStorageError(StorageError):
    """Raised when the store failed in a way that may pass: a 5xx, a timeout, a lost connection."""


class ObjectNotFoundError(StorageError):
    """Raised when no object (or file) is stored at the key asked for."""


class StoreAccessError(StorageError, ConfigError):
    """Raised when the store refuses access: no such bucket, rejected credentials, a 403."""


class BrokerError(TtsBatchError):
    """Raised when Redis, the broker and home of job state, cannot be reached or answer."""


class EngineError(TtsBatchError):
    """Raised when a speech engine fails to synthesise a chunk."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        chunk_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.chunk_index = chunk_index


class RetryableEngineError(EngineError):
    """Raised when a request failed but may succeed later (5xx, cut stream, stall).

    ``retry_after`` is the delay in seconds the server suggested, if it did.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        chunk_index: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, chunk_index=chunk_index)
        self.retry_after = retry_after


class RateLimitedError(RetryableEngineError):
    """Raised when the provider answered 429 (or an old-style 400 rate_limit)."""


class PermanentEngineError(EngineError):
    """Raised when a request can never succeed as sent (400/404/422, empty audio)."""


class FatalEngineError(PermanentEngineError):
    """Raised when no request to this provider can succeed: stop the whole job."""


class AuthenticationError(FatalEngineError):
    """Raised when the provider rejected the API key (401/403)."""


class QuotaExceededError(FatalEngineError):
    """Raised when the provider account is out of credits or quota (402)."""


class JobError(TtsBatchError):
    """Raised when a job failed (its chunks exhausted their retries) or was cancelled."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
