"""The Celery app of the workers, on a Redis broker (toolbox.md's notes applied).

Reliability settings and why:

* ``task_acks_late`` + ``worker_prefetch_multiplier=1``: a message is
  acknowledged only when its chunk is stored (or failed for good), and a worker
  reserves no more than it runs, so a dead worker loses nothing and hoards
  nothing.
* ``visibility_timeout``: Redis hands an unacknowledged message to another
  worker after this long **even if it is still running**, so it must exceed
  the longest time a healthy message stays unacknowledged
  (:func:`visibility_timeout`): its retry countdown (the message waits in a
  worker, unacknowledged, until its ETA) + the wait for a provider slot + the
  longest chunk + 25 % for queueing inside the worker. With the defaults
  (``TTSBATCH_PROVIDER_TIMEOUT=60``, retry cap 60 s) that is
  (66 + 60 + 180) x 1.25 = 382.5 s. It is also about how long a SIGKILLed
  worker's chunks wait before another worker takes them (kombu's sweep is
  made to run every quarter of it, at most 10 s, instead of every 100 s). A message delivered twice
  anyway costs at most one duplicate request: chunks are idempotent.
* ``task_reject_on_worker_lost`` + ``task_retry_on_worker_lost`` (Celery 5.7):
  a pool process killed mid-chunk (OOM, segfault) becomes a bounded retry
  instead of a lost message or an endless redelivery loop.
* ``task_ignore_result``: nobody waits on Celery results; progress is read from
  :mod:`ttsbatch.state` (toolbox.md: ``AsyncResult.get`` misbehaves here).
* The threads pool ignores time limits: chunk deadlines are enforced by the
  engine's ``should_stop`` callback and httpx timeouts (:mod:`worker.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from ttsbatch.messages import (
    ALL_QUEUES,
    FINALIZE_JOB,
    FINALIZE_QUEUE,
    PROVIDER_QUEUE,
    SYNTHESIZE_CHUNK,
)
from ttsbatch.settings import Settings, WorkerSettings
from worker.retrying import RetryPolicy

__all__ = [
    "ALL_QUEUES",
    "FINALIZE_JOB",
    "SYNTHESIZE_CHUNK",
    "Tuning",
    "create_celery_app",
    "tuning_for",
    "visibility_timeout",
]

#: Reschedules of a chunk that are not its fault (no provider slot yet), on top
#: of the retry policy's attempts; together they bound Celery's ``max_retries``.
BUSY_RESCHEDULES = 30
#: Share of the healthy unacknowledged time added for queueing inside a worker.
QUEUE_SLACK = 0.25


@dataclass(frozen=True, slots=True)
class Tuning:
    """Every time bound of a chunk, derived from the settings in one place."""

    policy: RetryPolicy
    chunk_deadline: float  # one chunk's synthesis, start to end of stream
    slot_wait: float  # longest wait for a provider lease inside a task
    max_countdown: float  # longest retry countdown, server hints included
    failure_budget: int
    retry_budget: float
    lease_ttl: float
    visibility_timeout: float

    @property
    def max_retries(self) -> int:
        """Celery's bound on one message's retries."""
        return self.policy.max_attempts + BUSY_RESCHEDULES


def visibility_timeout(chunk_deadline: float, slot_wait: float, max_countdown: float) -> float:
    """Return the broker visibility timeout: the longest healthy unacked time plus slack."""
    return (max_countdown + slot_wait + chunk_deadline) * (1 + QUEUE_SLACK)


def tuning_for(settings: Settings, worker: WorkerSettings | None = None) -> Tuning:
    """Derive a worker's time bounds from the provider timeout and the retry settings."""
    worker = worker or settings.worker
    policy = RetryPolicy(max_attempts=worker.retry_attempts, cap=worker.retry_cap)
    # A stream may legitimately run longer than one read timeout; three bound it.
    chunk_deadline = 3 * settings.provider.timeout
    slot_wait = settings.provider.timeout
    # RetryPolicy adds up to 10 % jitter to the cap; longer server hints are
    # clamped here and honoured by the shared cooldown in worker.limits.
    max_countdown = worker.retry_cap * 1.1
    return Tuning(
        policy=policy,
        chunk_deadline=chunk_deadline,
        slot_wait=slot_wait,
        max_countdown=max_countdown,
        failure_budget=worker.failure_budget,
        retry_budget=worker.retry_budget,
        lease_ttl=worker.lease_ttl,
        visibility_timeout=worker.visibility_timeout
        or visibility_timeout(chunk_deadline, slot_wait, max_countdown),
    )


def create_celery_app(
    settings: Settings, *, tuning: Tuning | None = None, register: bool = True
) -> Celery:
    """Return the workers' Celery app on ``settings.redis_url`` with its tasks registered.

    Nothing connects until a task is sent or a worker starts.
    """
    tuning = tuning or tuning_for(settings)
    app = Celery("ttsbatch", set_as_current=False)
    app.conf.update(
        broker_url=settings.redis_url,
        broker_transport_options={
            "visibility_timeout": tuning.visibility_timeout,
            # kombu sweeps for overdue unacked messages every interval x
            # throttle seconds (10 x 10 by default): sweep every interval
            # instead, a quarter of the timeout, so a dead worker's chunks
            # return within about 1.25 visibility timeouts.
            "unacked_restore_throttle": 1,
            "unacked_restore_interval": max(1, min(10, int(tuning.visibility_timeout / 4))),
            # The sweep runs under a Redis lock that expires after 300 s by
            # default: a worker SIGKILLed while holding it would stall every
            # restore that long. A sweep takes milliseconds.
            "unacked_mutex_expire": max(10, int(tuning.visibility_timeout / 4)),
        },
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_retry_on_worker_lost=True,
        # A prefork child that hangs past every deadline is killed; the threads
        # pool ignores this (toolbox.md) and relies on should_stop instead.
        task_time_limit=int(tuning.visibility_timeout * 0.9),
        worker_prefetch_multiplier=1,
        # On a lost broker connection, drop running late-ack tasks: they are
        # redelivered (Celery 5.x warns unless this is chosen explicitly).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=PROVIDER_QUEUE,
        task_routes={FINALIZE_JOB: {"queue": FINALIZE_QUEUE}},
        worker_send_task_events=False,
    )
    if register:
        from worker.tasks import register_tasks  # noqa: PLC0415 - tasks import this module

        register_tasks(app, settings, tuning)
        # The heartbeat file the container and Kubernetes probes read (worker/health.py).
        from worker.health import install  # noqa: PLC0415 - symmetric with the tasks

        install(app)
        # The heartbeat in Redis that tells the API which queues live workers read.
        from worker.presence import install as announce  # noqa: PLC0415 - symmetric

        announce(app, settings)
    return app
