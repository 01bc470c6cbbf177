"""The retry policy waits what the server asked, backs off otherwise, and gives up."""

from __future__ import annotations

import random

from ttsbatch.errors import (
    AuthenticationError,
    ObjectNotFoundError,
    PermanentEngineError,
    RateLimitedError,
    RetryableEngineError,
    StorageError,
    StoreAccessError,
    TransientStorageError,
)
from worker.retrying import RetryPolicy


def test_the_servers_suggested_delay_is_a_floor() -> None:
    policy = RetryPolicy()
    for attempt in range(1, 5):
        delay = policy.delay(
            attempt, RateLimitedError("slow down", retry_after=2.0), random.Random(attempt)
        )
        assert delay is not None
        assert delay >= 2.0


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=100, base=1.0, cap=8.0)
    rng = random.Random(0)
    delays = [policy.delay(n, RetryableEngineError("cut"), rng) for n in range(1, 30)]
    assert all(d is not None and 0 <= d <= 8.0 for d in delays)


def test_permanent_and_fatal_errors_are_not_retried() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, PermanentEngineError("unknown voice")) is None
    assert policy.delay(1, AuthenticationError("bad key")) is None
    assert policy.delay(1, ValueError("bug")) is None


def test_a_store_that_refuses_access_or_lacks_the_object_is_not_retried() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, StoreAccessError("s3://b: access denied")) is None
    assert policy.delay(1, ObjectNotFoundError("s3://b/k: no such object")) is None
    assert policy.delay(1, StorageError("key '../x' escapes the store root")) is None


def test_retryable_errors_give_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay(2, TransientStorageError("s3 hiccup")) is not None
    assert policy.delay(3, RetryableEngineError("503")) is None
