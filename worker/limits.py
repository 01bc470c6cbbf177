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
Redis's own clock (``TIME``), so workers on different machines agree; tests
give a limiter a clock of their own instead (the scripts take the time as
their first argument). The scripts are the ``limits_*.lua`` files beside this
module.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Final, cast

import redis
from redis.commands.core import Script

from ttsbatch.errors import BrokerError, EngineError, RateLimitedError, RetryableEngineError
from ttsbatch.keys import NAMESPACE, RedisKeys
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


#: The scripts that need the time (they start with ``limits_clock.lua``).
_TIMED = frozenset({"acquire", "slow_down"})


def _script(client: redis.Redis, name: str) -> Script:
    """Register ``limits_<name>.lua`` (beside this module), after the clock prelude if it needs the time."""
    folder = resources.files(__package__)
    parts = ("clock", name) if name in _TIMED else (name,)
    text = "".join(folder.joinpath(f"limits_{part}.lua").read_text() for part in parts)
    return client.register_script(text)


class NotSentError(RetryableEngineError):
    """Raised when a request was never sent (no provider slot was taken): nothing to pay."""


class ProviderBusyError(NotSentError):
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
                with contextlib.suppress(redis.RedisError, BrokerError):
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
        clock: seconds since the epoch instead of Redis's clock (tests).
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
        namespace: str = NAMESPACE,
        renew: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.concurrency = concurrency
        self.rps = rps
        self.lease_ttl = lease_ttl
        self.burst = burst
        self.renew_leases = renew
        self.clock = clock
        names = RedisKeys(namespace)
        self._leases, self._state, self._wake = (
            names.limits(provider, part) for part in ("leases", "state", "wake")
        )
        self._acquire = _script(client, "acquire")
        self._release = _script(client, "release")
        self._slow_down = _script(client, "slow_down")
        self._keeper: _Keeper | None = None
        self._keeper_lock = threading.Lock()

    # -- leases ------------------------------------------------------------

    def try_acquire(self) -> Lease | float:
        """Take a lease now if allowed; otherwise return seconds worth waiting (a hint)."""
        lease_id = uuid.uuid4().hex
        args: list[str | int | float] = [
            self._now_arg(),
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
            NotSentError: ``should_stop`` returned True while waiting.
        """
        deadline = time.monotonic() + max_wait
        while True:
            granted = self.try_acquire()
            if isinstance(granted, Lease):
                return granted
            if should_stop is not None and should_stop():
                raise NotSentError(f"{self.provider}: stopped while waiting for a slot")
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
        args: list[str | int] = [
            self._now_arg(),
            int(cooldown * 1000),
            self.concurrency,
            _STATE_TTL_MS,
        ]
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
        if self.clock is not None:
            return int(self.clock() * 1000)
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _now_arg(self) -> str:
        """The scripts' first argument: the clock's time in ms, or '' for Redis's."""
        return "" if self.clock is None else str(int(self.clock() * 1000))


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
