"""The beat when Redis lost its data: its lock taken again, its entries restored from the store.

redbeat keeps every entry (the beat's own periodic scans, each schedule's
cron) and its lock in Redis. After a ``FLUSHALL`` or a failover to an empty
server, stock redbeat's next tick fails to renew the lock and the beat thread
dies, and no schedule would ever fire again. :class:`RecoveringScheduler`
takes the lock again (unless another beat did), writes the static entries
again, and restores each schedule's entry from its record in the store
(``schedules/<id>.json``, :mod:`scheduler.records`); a marker key in Redis
says this was done, so a healthy tick costs two small Redis reads.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from celery import Celery
from redbeat import RedBeatScheduler  # type: ignore[import-untyped] # redbeat ships no types
from redbeat.schedulers import get_redis  # type: ignore[import-untyped]
from redis.exceptions import LockError, RedisError

from scheduler.records import read_items
from scheduler.schedules import schedule_entry
from ttsbatch.errors import TtsBatchError
from ttsbatch.storage import Store, open_store

log = logging.getLogger(__name__)

#: The celery setting naming the store whose schedule records the beat restores.
STORE_SETTING: Final = "ttsbatch_store"
#: Seconds until the next tick after a failed recovery (the store or Redis is down).
RETRY_AFTER: Final = 5.0


def restore_schedules(app: Celery, store: Store) -> int:
    """Save the redbeat entry of every schedule recorded in ``store`` that Redis lacks.

    Returns:
        How many entries were restored.
    """
    client = get_redis(app)
    restored = 0
    for schedule_id, record in read_items(store, "schedules"):
        cron = record.get("cron")
        if not isinstance(cron, str):
            continue
        try:
            entry = schedule_entry(app, schedule_id, cron)
        except TtsBatchError as exc:
            log.warning("schedule %s: not restored (%s)", schedule_id, exc)
            continue
        if not client.exists(entry.key):
            entry.save()
            restored += 1
    return restored


class RecoveringScheduler(RedBeatScheduler):  # type: ignore[misc] # redbeat ships no types
    """redbeat's scheduler, which survives the loss of Redis's data (see the module)."""

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self._store: Store | None = None

    @property
    def marker(self) -> str:
        """The key present while Redis holds every entry (set after each restoration)."""
        return f"{self.app.redbeat_conf.key_prefix}:restored"

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Take the lock again if it was lost, restore lost entries, then tick as redbeat does."""
        if self.lock_key and self.lock is not None and not self.lock.owned():
            if not self.lock.acquire(blocking=False):
                return float(self.max_interval)  # another beat holds it now: stand by
            log.warning("beat: the lock was lost (Redis flushed or replaced); took it again")
        try:
            self.restore()
        except (TtsBatchError, OSError, RedisError) as exc:
            log.warning("beat: could not restore entries yet (%s)", exc)
            return RETRY_AFTER
        try:
            return float(super().tick(*args, **kwargs))
        except LockError:  # lost between the look above and redbeat's renewal
            return RETRY_AFTER

    def restore(self) -> None:
        """Write the static entries and the schedules' entries again if Redis lost them."""
        client = get_redis(self.app)
        if client.exists(self.marker):
            return
        self.setup_schedule()
        restored = 0
        store = self._open_store()
        if store is not None:
            restored = restore_schedules(self.app, store)
        client.set(self.marker, str(time.time()))
        log.info("beat: entries written again, %d schedules restored from the store", restored)

    def _open_store(self) -> Store | None:
        if self._store is None:
            url = self.app.conf.get(STORE_SETTING)
            self._store = open_store(url) if url else None
        return self._store
