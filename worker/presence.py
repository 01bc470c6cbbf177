"""A worker's heartbeat in Redis: the queues it consumes, for the API to read.

A consumer bootstep (:func:`install`) announces the worker in the
:class:`~ttsbatch.roster.Roster` when its task consumer has started, again
every :data:`~ttsbatch.roster.HEARTBEAT_INTERVAL` seconds from the worker's own
event-loop timer, and withdraws it when the consumer stops (a warm shutdown, a
lost broker connection). A worker killed outright drops out when its last
heartbeat expires. The API refuses a job whose queue no live worker consumes
(:mod:`scheduler.api.availability`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import redis

from ttsbatch.roster import HEARTBEAT_INTERVAL, Roster

if TYPE_CHECKING:
    from celery import Celery

    from ttsbatch.settings import Settings

log = logging.getLogger(__name__)

#: Seconds a heartbeat may block the worker's event loop before it is given up.
REDIS_TIMEOUT = 5.0


def consumed_queues(consumer: Any) -> list[str]:
    """Return the names of the queues a Celery consumer reads."""
    return sorted(queue.name for queue in consumer.task_consumer.queues)


def install(app: Celery, settings: Settings, interval: float = HEARTBEAT_INTERVAL) -> None:
    """Add the heartbeat bootstep to ``app``'s consumer: call before the worker starts."""
    from celery import bootsteps  # noqa: PLC0415 - symmetric with worker.health

    class Presence(bootsteps.StartStopStep):
        """Announce the worker's queues in Redis while its consumer consumes."""

        # Start after the task consumer: the worker really consumes these queues.
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.tref: Any = None
            self.roster: Roster | None = None
            self.queues: list[str] = []

        def _roster(self) -> Roster:
            if self.roster is None:
                client = redis.Redis.from_url(
                    settings.redis_url,
                    socket_timeout=REDIS_TIMEOUT,
                    socket_connect_timeout=REDIS_TIMEOUT,
                )
                self.roster = Roster(client)
            return self.roster

        def beat(self, hostname: str) -> None:
            try:
                self._roster().announce(hostname, self.queues)
            except (redis.RedisError, OSError) as exc:
                # The next beat tries again; the API sees the worker gone meanwhile.
                log.warning("heartbeat of %s to Redis failed: %s", hostname, exc)

        def start(self, parent: Any) -> None:
            self.queues = consumed_queues(parent)
            self.beat(parent.hostname)
            self.tref = parent.timer.call_repeatedly(interval, self.beat, (parent.hostname,))

        def stop(self, parent: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None
            if self.queues:
                try:
                    self._roster().withdraw(parent.hostname, self.queues)
                except (redis.RedisError, OSError) as exc:
                    log.warning("withdrawing %s from Redis failed: %s", parent.hostname, exc)

        shutdown = stop

    app.steps["consumer"].add(Presence)
