"""The beat after Redis lost its data: its lock taken again, every entry back, schedules included.

A real Redis database is flushed under a real redbeat scheduler (ticked by the
test, as the beat's loop ticks it); schedule records are in a local store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import redis
from redbeat import RedBeatScheduler  # type: ignore[import-untyped] # redbeat ships no types
from redbeat.schedulers import (  # type: ignore[import-untyped]
    acquire_distributed_beat_lock,
    get_redis,
)
from redis.exceptions import LockNotOwnedError

from scheduler.beat import BEAT_SCHEDULER, create_beat_app
from scheduler.records import write_item
from scheduler.recovery import RecoveringScheduler
from scheduler.schedules import SCHEDULED_RUN
from ttsbatch.settings import Settings
from ttsbatch.storage.local import LocalStore

ENTRY = "ttsbatch:redbeat:ttsbatch-schedule:s-1"
STATIC = "ttsbatch:redbeat:ttsbatch-rescue-stalled"


@pytest.fixture
def client(redis_db_url: str) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(redis_db_url, decode_responses=True)
    yield made
    made.close()


@pytest.fixture
def started(
    redis_db_url: str, local_store: LocalStore
) -> Iterator[Callable[[type], RedBeatScheduler]]:
    """Start schedulers set up and holding the lock, as the beat's start leaves them."""
    made: list[RedBeatScheduler] = []

    def start(scheduler_class: type) -> RedBeatScheduler:
        app = create_beat_app(Settings(redis_url=redis_db_url, store=local_store.url))
        scheduler = scheduler_class(app)
        acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
        made.append(scheduler)
        return scheduler

    yield start
    for scheduler in made:
        if "connection" in scheduler.__dict__:  # a cached property: made by a tick
            scheduler.connection.close()
        get_redis(scheduler.app).connection_pool.disconnect()
        scheduler.app.close()


def test_the_beat_runs_the_recovering_scheduler() -> None:
    app = create_beat_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert app.conf.beat_scheduler == BEAT_SCHEDULER == "scheduler.recovery.RecoveringScheduler"


def test_stock_redbeat_dies_at_its_next_tick_after_a_flush(
    started: Callable[[type], RedBeatScheduler], client: redis.Redis
) -> None:
    scheduler = started(RedBeatScheduler)
    scheduler.tick()
    client.flushdb()
    with pytest.raises(LockNotOwnedError):
        scheduler.tick()


def test_after_a_flush_the_beat_takes_its_lock_again_and_restores_every_entry_from_the_store(
    started: Callable[[type], RedBeatScheduler], local_store: LocalStore, client: redis.Redis
) -> None:
    record: dict[str, object] = {
        "id": "s-1",
        "cron": "*/5 * * * *",
        "source": "s3://corpus/x/",
        "spec": {},
    }
    write_item(local_store, "schedules", "s-1", "tenant-a", record)
    scheduler = started(RecoveringScheduler)
    scheduler.tick()
    assert client.exists(ENTRY) and client.exists(STATIC)

    client.flushdb()
    assert scheduler.tick() > 0
    assert scheduler.lock.owned()
    assert client.exists(STATIC)  # the beat's own scans
    assert client.exists(ENTRY)  # the schedule: it fires again at its cron times
    entry = scheduler.Entry.from_key(ENTRY, app=scheduler.app)
    assert entry.task == SCHEDULED_RUN and entry.args == ["s-1"]
    assert client.zscore(scheduler.app.redbeat_conf.schedule_key, ENTRY) is not None


def test_after_a_flush_a_beat_that_lost_the_lock_to_another_stands_by(
    started: Callable[[type], RedBeatScheduler], client: redis.Redis
) -> None:
    scheduler = started(RecoveringScheduler)
    client.flushdb()
    other = get_redis(scheduler.app).lock(scheduler.lock_key, timeout=60)
    assert other.acquire(blocking=False)
    assert scheduler.tick() == scheduler.max_interval
    assert not scheduler.lock.owned() and not client.exists(ENTRY)
