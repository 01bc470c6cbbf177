"""The beat: the scheduler's one process for background work (``ttsbatch beat``).

One redbeat beat (its lock in Redis keeps it to one per cluster) with an
embedded worker on a threads pool. Whatever must happen once per cluster, or
survive a restart, runs here and never in a web process (architecture.md):

* :data:`RESCUE_STALLED`, sent by the beat every 5 s: re-sends the chunks whose
  lease ran out and what stalled jobs wait for (:func:`scheduler.rescue.rescue_active`,
  through the ports): one Lua call per active job, so a dead worker's chunks
  of a job nobody follows come back within a lease time and a few seconds;
* :data:`SCAN_WEBHOOKS`, every 2 s: enqueues a delivery per ended job's
  webhook (:func:`scheduler.webhooks.scan`);
* :data:`DELIVER_WEBHOOK`, sent by the scan: POSTs one event, retried with
  backoff (:func:`scheduler.webhooks.deliver`);
* :data:`SCHEDULED_RUN`, sent at a schedule's cron times: runs the schedule
  (:mod:`scheduler.schedules`);
* :data:`~scheduler.intake.PLAN_JOB`, sent by the API for each job it
  accepts: ingests, plans and dispatches it (:mod:`scheduler.intake`).

Reliability settings and why:

* A delivery is acknowledged late (``acks_late``): a beat killed while it waits
  between attempts (the retry is a message held until its ETA) or mid-POST
  leaves the message unacknowledged, and Redis hands it to the next beat after
  the visibility timeout. The timeout is :func:`visibility_timeout`: the
  longest healthy time a delivery stays unacknowledged (its longest retry
  countdown plus one POST), doubled. A message still waiting for a thread
  after it is delivered again, with the same ``webhook-id``.
* The beat's unacknowledged messages are kept under their own Redis keys
  (``ttsbatch:beat:unacked*``): kombu's sweep re-queues *every* message of its
  keys older than its own timeout, and the workers' chunks, with their much
  longer timeout, must not be swept by the beat (nor the beat's by them).
* Scans expire if not started within a few intervals, so a beat that was down
  does not run a backlog of them; they are idempotent anyway.
* redbeat's lock is renewed every few seconds and lapses
  :data:`LOCK_TIMEOUT` seconds after a beat dies, so a restarted (or standby)
  beat takes over within a minute, not redbeat's default 25.
* The threads pool ignores time limits: a POST is bounded by httpx timeouts.
* The scheduler is redbeat's, made to survive the loss of Redis's data
  (:class:`~scheduler.recovery.RecoveringScheduler`): it takes its lock again
  and restores its entries, schedules' included, from the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

import httpx
from celery import Celery, Task

from scheduler import retention, webhooks
from scheduler.dispatch import create_producer
from scheduler.intake import PLAN_QUEUE, Planner, lazy, register_plan_task
from scheduler.ports import Ports
from scheduler.recovery import STORE_SETTING
from scheduler.schedules import SCHEDULE_QUEUE, SCHEDULED_RUN, run_schedule
from scheduler.webhooks import DELIVERY_TIMEOUT, Outcome, WebhookDelivery, backoff
from ttsbatch.keys import RedisKeys
from ttsbatch.settings import Settings

log = logging.getLogger(__name__)

RESCUE_STALLED: Final = "ttsbatch.rescue_stalled"
#: Sent by the beat every ten minutes: removes the outputs of jobs whose lifetime passed.
SWEEP_RETENTION: Final = "ttsbatch.sweep_retention"
PRUNE_CACHE: Final = "ttsbatch.prune_chunk_cache"
SCAN_WEBHOOKS: Final = "ttsbatch.scan_webhooks"
DELIVER_WEBHOOK: Final = "ttsbatch.deliver_webhook"
WEBHOOK_QUEUE: Final = "ttsbatch.webhooks"
#: The queues ``ttsbatch beat``'s embedded worker consumes.
BEAT_QUEUES: Final = (SCHEDULE_QUEUE, WEBHOOK_QUEUE, PLAN_QUEUE)
#: The beat's scheduler class (``--scheduler``).
BEAT_SCHEDULER: Final = "scheduler.recovery.RecoveringScheduler"
#: Seconds between two looks for expired chunk leases and stalled jobs.
RESCUE_INTERVAL: Final = 5.0
#: Seconds between two looks for ended jobs whose webhook is due.
WEBHOOK_SCAN_INTERVAL: Final = 2.0
#: Longest sleep of the beat between two ticks; the lock is renewed at each.
MAX_LOOP_INTERVAL: Final = 5
#: Seconds redbeat's lock outlives a beat that stopped renewing it.
LOCK_TIMEOUT: Final = 30
REDBEAT_PREFIX: Final = RedisKeys().redbeat
_UNACKED_PREFIX: Final = RedisKeys().beat_unacked

Connect = Callable[[], Ports]


def visibility_timeout(attempts: int) -> float:
    """Return the beat's broker visibility timeout for deliveries of ``attempts`` attempts."""
    longest_countdown = backoff(attempts - 1) if attempts > 1 else 0.0
    return 2 * (longest_countdown + DELIVERY_TIMEOUT)


def create_beat_app(
    settings: Settings,
    *,
    connect: Connect | None = None,
    retry_delay: Callable[[int], float] = backoff,
) -> Celery:
    """Return the Celery app of ``ttsbatch beat``: redbeat, its periodic scans and their tasks.

    Without ``connect`` the app registers no tasks: the API uses it only to
    write schedules' redbeat entries.

    Args:
        connect: makes the domain's ports, once, on the first task that needs them.
        retry_delay: seconds before the next attempt of a delivery, after
            failed attempt ``n`` (tests shorten it).
    """
    app = create_producer(settings, name="ttsbatch-beat")
    timeout = visibility_timeout(settings.api.webhook_attempts)
    app.conf.update(
        redbeat_redis_url=settings.redis_url,
        # Its own Redis client options: not the broker's transport options below.
        redbeat_redis_options={},
        redbeat_key_prefix=REDBEAT_PREFIX,
        redbeat_lock_timeout=LOCK_TIMEOUT,
        beat_scheduler=BEAT_SCHEDULER,
        **{STORE_SETTING: settings.store},  # where the scheduler finds schedule records
        beat_max_loop_interval=MAX_LOOP_INTERVAL,
        beat_schedule={
            "ttsbatch-rescue-stalled": {
                "task": RESCUE_STALLED,
                "schedule": RESCUE_INTERVAL,
                "options": {"queue": SCHEDULE_QUEUE, "expires": RESCUE_INTERVAL},
            },
            "ttsbatch-scan-webhooks": {
                "task": SCAN_WEBHOOKS,
                "schedule": WEBHOOK_SCAN_INTERVAL,
                "options": {"queue": SCHEDULE_QUEUE, "expires": 5 * WEBHOOK_SCAN_INTERVAL},
            },
            "ttsbatch-retention": {
                "task": SWEEP_RETENTION,
                "schedule": retention.SWEEP_INTERVAL,
                "options": {"queue": SCHEDULE_QUEUE, "expires": retention.SWEEP_INTERVAL},
            },
            "ttsbatch-prune-cache": {
                "task": PRUNE_CACHE,
                "schedule": retention.CACHE_INTERVAL,
                "options": {"queue": SCHEDULE_QUEUE, "expires": retention.CACHE_INTERVAL},
            },
        },
        broker_transport_options={
            "visibility_timeout": timeout,
            "unacked_key": f"{_UNACKED_PREFIX}unacked",
            "unacked_index_key": f"{_UNACKED_PREFIX}unacked_index",
            "unacked_mutex_key": f"{_UNACKED_PREFIX}unacked_mutex",
            # Sweep for overdue messages every quarter of the timeout (at most
            # 10 s), not every 100 s, and let a dead sweeper's lock go as fast.
            "unacked_restore_throttle": 1,
            "unacked_restore_interval": max(1, min(10, int(timeout / 4))),
            "unacked_mutex_expire": max(10, int(timeout / 4)),
        },
        task_default_queue=SCHEDULE_QUEUE,
        worker_prefetch_multiplier=1,
        # A late-ack delivery running when the broker connection drops is
        # dropped and redelivered (Celery warns unless this is explicit).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        timezone="UTC",
    )
    if connect is not None:
        _register_tasks(app, settings, _Lazy(connect), retry_delay)
        register_plan_task(app, lazy(lambda: Planner.connect(settings)))
    return app


class _Lazy:
    """Makes the ports on first use, once, from whichever pool thread asks first."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._ports: Ports | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Ports:
        with self._lock:
            if self._ports is None:
                self._ports = self._connect()
            return self._ports


def _register_tasks(
    app: Celery, settings: Settings, ports: Callable[[], Ports], retry_delay: Callable[[int], float]
) -> None:
    # Not shared: a shared task is copied into every Celery app the process
    # creates later (a worker's, another beat's), where Celery 5.7 warns about
    # the duplicate name.
    attempts = settings.api.webhook_attempts
    key = webhooks.signing_key(settings.api.webhook_secret.get_secret_value())
    client = httpx.Client(timeout=DELIVERY_TIMEOUT, follow_redirects=False)

    @app.task(name=SCHEDULED_RUN, shared=False)
    def scheduled_run(schedule_id: str) -> str | None:
        record = run_schedule(ports(), schedule_id)
        return None if record is None else str(record["id"])

    @app.task(name=RESCUE_STALLED, shared=False)
    def rescue_stalled() -> None:
        ports().rescue()

    @app.task(name=SWEEP_RETENTION, shared=False)
    def sweep_retention() -> int:
        live = ports()
        return retention.sweep(live.store, live.state)

    @app.task(name=PRUNE_CACHE, shared=False)
    def prune_chunk_cache() -> int:
        live = ports()
        removed, _ = retention.prune_cache(live.store, live.state, settings.chunk_cache)
        return removed

    @app.task(
        name=DELIVER_WEBHOOK, bind=True, shared=False, acks_late=True, max_retries=attempts - 1
    )
    def deliver_webhook(self: Task[Any, Any], delivery: dict[str, Any]) -> str:
        message = WebhookDelivery.model_validate(delivery)
        attempt = self.request.retries + 1
        outcome = webhooks.deliver(
            client, message, key=key, allow_private=settings.api.webhook_allow_private
        )
        if outcome is Outcome.RETRY:
            if attempt < attempts:
                raise self.retry(countdown=retry_delay(attempt))
            log.error(
                "webhook %s to %s: gave up after %d attempts", message.id, message.url, attempt
            )
        elif outcome is Outcome.DELIVERED:
            log.info("webhook %s delivered to %s (attempt %d)", message.id, message.url, attempt)
        return outcome.value

    def enqueue(delivery: WebhookDelivery) -> None:
        deliver_webhook.apply_async(
            kwargs={"delivery": delivery.encode()}, queue=WEBHOOK_QUEUE, task_id=delivery.id
        )

    @app.task(name=SCAN_WEBHOOKS, shared=False)
    def scan_webhooks() -> int:
        return webhooks.scan(ports(), enqueue)
