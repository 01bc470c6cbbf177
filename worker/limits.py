"""Provider limits shared by every worker through Redis.

Twenty workers must not turn into a 429 storm. Before a request, a worker takes
a *lease* on its provider; one Lua script grants it only if all three hold:

* fewer than the effective concurrency are in flight (a sorted set of leases
  scored by expiry; leases of a dead worker simply expire, because only live
  processes renew theirs),
* the requests-per-second pace allows one more (GCRA: a "theoretical arrival
  time" moved forward by ``1/rps`` per grant, with a small burst),
* the provider is not cooling down after a 429.

Adaptive slow-down: a 429 (or Together's burst 503) sets a shared cooldown that
honours the server's ``retry_after`` and halves the effective concurrency (at
most once per second); each successful request adds ``1/limit`` back, so the
limit climbs by about one per round of requests (AIMD, as TCP does). Time is
Redis's own clock (``TIME``), so workers on different machines agree.

Keys, per provider, under a namespace::

    <ns>:limits:<provider>:leases   zset   lease id -> expiry (ms)
    <ns>:limits:<provider>:state    hash   tat, limit, cooldown_until, halved_at
    <ns>:limits:<provider>:wake     list   a token per release, for waiters (BLPOP)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, cast

import redis

from ttsbatch.errors import EngineError, RateLimitedError, RetryableEngineError
from worker.engines import Engine, StopCheck, Synthesis

#: A lease not renewed for this long is considered dead (its worker died).
DEFAULT_LEASE_TTL: Final = 15.0
#: Requests that may start back to back before the per-second pace applies.
DEFAULT_BURST: Final = 2
#: Cooldown after a 429 that came without a retry hint.
DEFAULT_COOLDOWN: Final = 1.0
#: State of a provider nobody used for this long is forgotten.
_STATE_TTL_MS: Final = 3_600_000
#: Longest single wait between two attempts at a lease.
_MAX_POLL: Final = 0.25

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local cooldown = tonumber(redis.call('HGET', KEYS[2], 'cooldown_until') or '0')
if cooldown > now then return cooldown - now end
local max = tonumber(ARGV[3])
local limit = math.floor(tonumber(redis.call('HGET', KEYS[2], 'limit') or max))
limit = math.max(1, math.min(limit, max))
if redis.call('ZCARD', KEYS[1]) >= limit then return -1 end
local interval = tonumber(ARGV[4])
local tat = math.max(tonumber(redis.call('HGET', KEYS[2], 'tat') or now), now)
local early = tat - now - interval * (tonumber(ARGV[5]) - 1)
if early > 0 then return math.max(1, math.ceil(early)) end
redis.call('HSET', KEYS[2], 'tat', tat + interval)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 0
"""

# KEYS: leases, state, wake. ARGV: lease id, ok (0/1), max, concurrency-1, state ttl.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or '0')
  if limit > 0 then
    limit = limit + 1 / limit
    if limit >= tonumber(ARGV[3]) then redis.call('HDEL', KEYS[2], 'limit')
    else redis.call('HSET', KEYS[2], 'limit', tostring(limit)) end
  end
end
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return removed
"""

# KEYS: state. ARGV: cooldown ms, max, state ttl. Returns the new effective limit.
_SLOW_DOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
if until_ > cooldown then redis.call('HSET', KEYS[1], 'cooldown_until', until_) end
local max = tonumber(ARGV[2])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or max)
local halved = tonumber(redis.call('HGET', KEYS[1], 'halved_at') or '0')
if now - halved >= 1000 then
  limit = math.max(1, math.floor(limit / 2))
  redis.call('HSET', KEYS[1], 'limit', tostring(limit), 'halved_at', now)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return math.floor(limit)
"""


class ProviderBusyError(RetryableEngineError):
    """Raised when no provider slot came free in time: try later; not the chunk's fault."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted slot at a provider; give it back with :meth:`ProviderLimiter.release`."""

    id: str
    provider: str


class _Keeper:
    """Renews this process's leases so that they expire only if the process dies."""

    def __init__(self, limiter: ProviderLimiter) -> None:
        self._limiter = weakref.ref(limiter)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._stop = threading.Event()
        thread = threading.Thread(target=self._run, name="ttsbatch-lease-keeper", daemon=True)
        thread.start()

    @property
    def alive_here(self) -> bool:
        return self._pid == os.getpid() and not self._stop.is_set()

    def add(self, lease_id: str) -> None:
        with self._lock:
            self._held.add(lease_id)

    def discard(self, lease_id: str) -> None:
        with self._lock:
            self._held.discard(lease_id)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            limiter = self._limiter()
            if limiter is None:
                return
            interval = limiter.lease_ttl / 3
            del limiter
            if self._stop.wait(interval):
                return
            limiter = self._limiter()
            if limiter is None:
                return
            with self._lock:
                held = list(self._held)
            if held:
                # On an error the next round tries again; a lost lease only lowers concurrency.
                with contextlib.suppress(redis.RedisError):
                    limiter.renew(held)
            del limiter


class ProviderLimiter:
    """Concurrency, pace and 429 back-off of one provider, shared through Redis.

    Args:
        client: a Redis client (``decode_responses=True``).
        provider: names the provider, e.g. ``together:https://api.together.ai/v1``.
        concurrency: most requests in flight at once, across every worker.
        rps: most requests started per second.
        lease_ttl: seconds a lease outlives its last renewal.
        burst: requests that may start back to back.
        renew: keep leases alive from a background thread (tests turn it off to
            play a dead worker).
    """

    def __init__(
        self,
        client: redis.Redis,
        provider: str,
        *,
        concurrency: int,
        rps: float,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        burst: int = DEFAULT_BURST,
        namespace: str = "ttsbatch",
        renew: bool = True,
    ) -> None:
        self.client = client
        self.provider = provider
        self.concurrency = concurrency
        self.rps = rps
        self.lease_ttl = lease_ttl
        self.burst = burst
        self.renew_leases = renew
        base = f"{namespace}:limits:{provider}"
        self._leases, self._state, self._wake = f"{base}:leases", f"{base}:state", f"{base}:wake"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._slow_down = client.register_script(_SLOW_DOWN)
        self._keeper: _Keeper | None = None
        self._keeper_lock = threading.Lock()

    # -- leases ------------------------------------------------------------

    def try_acquire(self) -> Lease | float:
        """Take a lease now if allowed; otherwise return seconds worth waiting (a hint)."""
        lease_id = uuid.uuid4().hex
        args: list[str | int | float] = [
            lease_id,
            int(self.lease_ttl * 1000),
            self.concurrency,
            1000.0 / self.rps,
            self.burst,
            _STATE_TTL_MS,
        ]
        answer = int(cast("int", self._acquire(keys=[self._leases, self._state], args=args)))
        if answer == 0:
            if self.renew_leases:
                self._keep().add(lease_id)
            return Lease(lease_id, self.provider)
        return _MAX_POLL if answer < 0 else answer / 1000

    def acquire(self, *, max_wait: float, should_stop: StopCheck | None = None) -> Lease:
        """Wait for a lease, at most ``max_wait`` seconds.

        Raises:
            ProviderBusyError: no slot within ``max_wait`` (``retry_after`` says
                how long the provider is still cooling down, if it is).
            RetryableEngineError: ``should_stop`` returned True while waiting.
        """
        deadline = time.monotonic() + max_wait
        while True:
            granted = self.try_acquire()
            if isinstance(granted, Lease):
                return granted
            if should_stop is not None and should_stop():
                raise RetryableEngineError(f"{self.provider}: stopped while waiting for a slot")
            left = deadline - time.monotonic()
            if left <= 0:
                busy = granted if granted > _MAX_POLL else None
                raise ProviderBusyError(
                    f"{self.provider}: no request slot free within {max_wait:g} s",
                    retry_after=busy,
                )
            pause = min(granted, _MAX_POLL, left)
            if granted >= _MAX_POLL:
                # Full: sleep until someone releases (a token in the wake list) or the poll ends.
                self.client.blpop([self._wake], timeout=pause)
            else:
                time.sleep(pause)

    def release(self, lease: Lease, *, ok: bool) -> None:
        """Give a lease back; ``ok`` (the request succeeded) lets the limit recover."""
        if self._keeper is not None:
            self._keeper.discard(lease.id)
        self._release(
            keys=[self._leases, self._state, self._wake],
            args=[lease.id, int(ok), self.concurrency, self.concurrency - 1, _STATE_TTL_MS],
        )

    def renew(self, lease_ids: list[str]) -> None:
        """Push the expiry of live leases ``lease_ttl`` into the future."""
        expiry = self._server_ms() + int(self.lease_ttl * 1000)
        # XX: never resurrect a lease that expired or was released meanwhile.
        self.client.zadd(self._leases, dict.fromkeys(lease_ids, expiry), xx=True)

    @contextmanager
    def lease(self, *, max_wait: float, should_stop: StopCheck | None = None) -> Iterator[Lease]:
        """Hold a lease for the block; a 429 raised inside slows every worker down."""
        lease = self.acquire(max_wait=max_wait, should_stop=should_stop)
        ok = False
        try:
            yield lease
            ok = True
        except EngineError as exc:
            if _asks_to_slow_down(exc):
                self.slow_down(getattr(exc, "retry_after", None))
            raise
        finally:
            self.release(lease, ok=ok)

    # -- adaptation --------------------------------------------------------

    def slow_down(self, retry_after: float | None) -> int:
        """React to a 429: a shared cooldown and half the concurrency; return the new limit."""
        cooldown = retry_after if retry_after is not None else DEFAULT_COOLDOWN
        args = [int(cooldown * 1000), self.concurrency, _STATE_TTL_MS]
        return int(cast("int", self._slow_down(keys=[self._state], args=args)))

    def effective_limit(self) -> int:
        """Return the concurrency allowed now (lower than configured after 429s)."""
        raw = cast("str | None", self.client.hget(self._state, "limit"))
        return max(1, min(self.concurrency, int(float(raw)))) if raw else self.concurrency

    def in_flight(self) -> int:
        """Return the number of live leases (expired ones excluded)."""
        return int(self.client.zcount(self._leases, self._server_ms(), "+inf"))

    def close(self) -> None:
        """Stop renewing leases (those still held then expire)."""
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None

    def _keep(self) -> _Keeper:
        with self._keeper_lock:
            if self._keeper is None or not self._keeper.alive_here:
                # A forked child inherits no thread: start its own keeper.
                self._keeper = _Keeper(self)
            return self._keeper

    def _server_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000


def _asks_to_slow_down(exc: EngineError) -> bool:
    # Together answers bursts with 503 as well as 429 (tts-protocol.md).
    return isinstance(exc, RateLimitedError) or exc.status_code == 503


class LimitedEngine:
    """An :class:`~worker.engines.Engine` whose every request holds a provider lease."""

    def __init__(self, engine: Engine, limiter: ProviderLimiter, *, max_wait: float) -> None:
        self.engine = engine
        self.limiter = limiter
        self.max_wait = max_wait
        self.name = engine.name
        self.default_max_chars = engine.default_max_chars

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        """Wait for a lease, then let the engine speak ``text``."""
        with self.limiter.lease(max_wait=self.max_wait, should_stop=should_stop):
            return self.engine.synthesize(text, should_stop=should_stop)

    def close(self) -> None:
        """Close the engine and stop renewing leases."""
        self.engine.close()
        self.limiter.close()
