"""Provider limits in a real Redis: concurrency leases, pace, expiry, 429 back-off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from ttsbatch.errors import RateLimitedError
from ttsbatch.models import TimingSource
from worker.engines import Synthesis
from worker.limits import Lease, LimitedEngine, ProviderBusyError, ProviderLimiter


@pytest.fixture
def client(redis_db_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_db_url, decode_responses=True)
    yield connection
    connection.close()


def limiter_of(client: redis.Redis, **options: object) -> ProviderLimiter:
    settings: dict[str, object] = {"concurrency": 3, "rps": 1000.0, "namespace": "t"}
    settings.update(options)
    return ProviderLimiter(client, "fake:http://p", **settings)  # type: ignore[arg-type]


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_threads_of_many_limiters_never_hold_more_leases_than_allowed(client: redis.Redis) -> None:
    limiters = [limiter_of(client, concurrency=3) for _ in range(4)]  # four "workers"
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    both_waiting = threading.Barrier(12)

    def work(limiter: ProviderLimiter) -> None:
        nonlocal in_flight, peak
        both_waiting.wait()
        for _ in range(5):
            with limiter.lease(max_wait=30):
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(0.005)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=work, args=(limiters[i % 4],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 3
    assert limiters[0].in_flight() == 0
    for limiter in limiters:
        limiter.close()


def test_the_pace_allows_a_burst_then_asks_to_wait(client: redis.Redis) -> None:
    limiter = limiter_of(client, rps=0.5, burst=2)
    first, second, third = (limiter.try_acquire() for _ in range(3))
    assert isinstance(first, Lease) and isinstance(second, Lease)
    assert isinstance(third, float) and third > 0.5  # the next slot is ~2 s away
    limiter.close()


class Clock:
    """The test's own time, passed into the Lua scripts instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def test_leases_of_a_dead_worker_expire(client: redis.Redis) -> None:
    clock = Clock()
    dead = limiter_of(client, concurrency=2, lease_ttl=15, renew=False, clock=clock)
    assert isinstance(dead.try_acquire(), Lease)
    assert isinstance(dead.try_acquire(), Lease)
    alive = limiter_of(client, concurrency=2, lease_ttl=15, renew=False, clock=clock)
    assert not isinstance(alive.try_acquire(), Lease)
    clock.now += 14.9
    assert not isinstance(alive.try_acquire(), Lease)
    clock.now += 0.2  # the dead worker's leases ran out
    assert isinstance(alive.try_acquire(), Lease)
    assert alive.in_flight() == 1


def test_a_renewed_lease_outlives_its_ttl(client: redis.Redis) -> None:
    clock = Clock()
    limiter = limiter_of(client, concurrency=1, lease_ttl=15, renew=False, clock=clock)
    lease = limiter.acquire(max_wait=1)
    for _ in range(3):  # three lifetimes, renewed within each
        clock.now += 14
        limiter.renew([lease.id])
        assert limiter.in_flight() == 1
    clock.now += 15.1
    assert limiter.in_flight() == 0
    limiter.release(lease, ok=True)


def test_a_live_limiter_renews_its_leases_from_a_thread(client: redis.Redis) -> None:
    clock = Clock()
    limiter = limiter_of(client, concurrency=1, lease_ttl=0.3, clock=clock)
    lease = limiter.acquire(max_wait=1)
    clock.now += 60  # long past its lifetime: only a renewal since brings it back
    wait_until(lambda: limiter.in_flight() == 1)  # the keeper renews every 0.1 s
    limiter.release(lease, ok=True)
    assert limiter.in_flight() == 0
    limiter.close()


def test_a_429_cools_every_worker_down_and_halves_the_concurrency(client: redis.Redis) -> None:
    limiter = limiter_of(client, concurrency=8)
    other = limiter_of(client, concurrency=8)
    assert limiter.slow_down(retry_after=5.0) == 4
    wait = other.try_acquire()
    assert isinstance(wait, float) and wait > 4.0
    with pytest.raises(ProviderBusyError) as caught:
        other.acquire(max_wait=0.3)
    assert caught.value.retry_after is not None and caught.value.retry_after > 4.0
    limiter.close()
    other.close()


def test_successes_climb_back_to_the_configured_concurrency(client: redis.Redis) -> None:
    limiter = limiter_of(client, concurrency=4)
    limiter.slow_down(retry_after=0.0)
    assert limiter.effective_limit() == 2
    for _ in range(20):
        lease = limiter.acquire(max_wait=5)
        limiter.release(lease, ok=True)
    assert limiter.effective_limit() == 4
    limiter.close()


class _Engine429:
    name = "fake"
    default_max_chars = 400

    def __init__(self) -> None:
        self.calls = 0

    def synthesize(self, text: str, *, should_stop: object = None) -> Synthesis:
        self.calls += 1
        if self.calls == 1:
            raise RateLimitedError("429", retry_after=0.2, status_code=429)
        return Synthesis(b"\0\0", 24000, (), TimingSource.NONE)

    def close(self) -> None:
        pass


def test_a_limited_engine_reports_429s_and_returns_its_lease(client: redis.Redis) -> None:
    limiter = limiter_of(client, concurrency=2)
    engine = LimitedEngine(_Engine429(), limiter, max_wait=5)
    with pytest.raises(RateLimitedError):
        engine.synthesize("hi")
    assert limiter.in_flight() == 0
    assert limiter.effective_limit() == 1
    assert engine.synthesize("hi").samples == 1  # waits out the 0.2 s cooldown
    engine.close()
