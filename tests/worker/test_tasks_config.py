"""The Celery app's reliability settings and the worker's pool defaults (no broker needed)."""

from __future__ import annotations

import pytest

from ttsbatch.cli.cluster import default_concurrency, default_pool, worker_argv
from ttsbatch.errors import RetryableEngineError
from ttsbatch.messages import ALL_QUEUES, FINALIZE_JOB, PROVIDER_QUEUE, SYNTHESIZE_CHUNK
from ttsbatch.settings import ProviderLimits, Settings, WorkerSettings
from worker.celery_app import create_celery_app, tuning_for


def test_the_visibility_timeout_outlasts_a_chunk_its_slot_wait_and_its_longest_countdown() -> None:
    settings = Settings(provider=ProviderLimits(timeout=60))
    tuning = tuning_for(settings, WorkerSettings(retry_cap=60))
    healthy = tuning.max_countdown + tuning.slot_wait + tuning.chunk_deadline
    assert tuning.visibility_timeout == pytest.approx(healthy * 1.25)
    assert tuning.visibility_timeout == pytest.approx((66 + 60 + 180) * 1.25)
    # The policy's own backoff never exceeds the countdown bound (hints are clamped to it).
    for attempt in range(1, tuning.policy.max_attempts):
        delay = tuning.policy.delay(attempt, RetryableEngineError("503"))
        assert delay is not None and delay <= tuning.max_countdown


def test_the_app_acknowledges_late_prefetches_one_and_retries_lost_workers() -> None:
    app = create_celery_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    conf = app.conf
    assert (
        conf.task_acks_late and conf.task_reject_on_worker_lost and conf.task_retry_on_worker_lost
    )
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result
    options = conf.broker_transport_options
    assert options["visibility_timeout"] > 300
    assert options["unacked_restore_throttle"] == 1
    tasks = app.tasks
    assert {SYNTHESIZE_CHUNK, FINALIZE_JOB} <= set(tasks)
    assert tasks[SYNTHESIZE_CHUNK].max_retries is not None  # bounded


def test_workers_default_to_processes_for_espeak_and_threads_for_providers() -> None:
    settings = Settings(provider=ProviderLimits(concurrency=8))
    assert default_pool(list(ALL_QUEUES)) == "prefork"
    assert default_pool([PROVIDER_QUEUE]) == "threads"
    assert default_concurrency("threads", settings) == 16
    argv = worker_argv(
        pool="threads", concurrency=3, queues=[PROVIDER_QUEUE], loglevel="info", hostname="w@h"
    )
    assert (
        "--pool=threads" in argv
        and "--concurrency=3" in argv
        and f"--queues={PROVIDER_QUEUE}" in argv
    )
