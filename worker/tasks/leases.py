"""Chunk leases as a worker process holds them: taken per attempt, renewed from a thread.

A lease that its worker stops renewing runs out, and a rescuer sends its chunk
again (:mod:`ttsbatch.state.leases`). Renewal runs in a thread of the process
that holds the leases, every third of their lifetime, whatever the pool: the
threads pool's threads share one keeper, a prefork child (which inherits no
thread from its parent) starts its own, and a child killed mid-chunk takes its
keeper with it. A renewal that finds a lease no longer its own (the chunk was
sent again, or stored by another worker) marks it lost: the synthesis stops at
its next ``should_stop`` check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from ttsbatch.errors import BrokerError
from ttsbatch.state import ChunkLeases

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A chunk lease this process took for one attempt at the chunk."""

    job_id: str
    chunk: str
    owner: str


class LeaseKeeper:
    """Renews the chunk leases of this process while their chunks are worked on.

    Args:
        leases: the job state's chunk leases.
        ttl: the lifetime of a lease (s); renewed every third of it.
        renew: keep leases alive from a thread (tests turn it off to play a
            dead worker, and call :meth:`renew_now`).
    """

    def __init__(self, leases: ChunkLeases, ttl: float, *, renew: bool = True) -> None:
        self.leases = leases
        self.ttl = ttl
        self.renew_leases = renew
        self._held: set[HeldLease] = set()
        self._lost: set[HeldLease] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = -1

    @contextlib.contextmanager
    def holding(self, lease: HeldLease | None) -> Iterator[None]:
        """Keep ``lease`` renewed for the block (None: nothing to keep)."""
        if lease is None:
            yield
            return
        with self._lock:
            self._held.add(lease)
            self._lost.discard(lease)
        self._start()
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(lease)
                self._lost.discard(lease)

    def lost(self, lease: HeldLease | None) -> bool:
        """Whether a renewal found ``lease`` no longer this process's."""
        with self._lock:
            return lease in self._lost

    def renew_now(self) -> None:
        """Renew every held lease once, job by job."""
        with self._lock:
            by_job: dict[str, dict[str, str]] = defaultdict(dict)
            for lease in self._held:
                by_job[lease.job_id][lease.chunk] = lease.owner
        for job_id, held in by_job.items():
            lost = self.leases.renew(job_id, held, self.ttl)
            if lost:
                log.info("%s: lease of %s passed to another message", job_id, ", ".join(lost))
                with self._lock:
                    self._lost |= {HeldLease(job_id, c, held[c]) for c in lost} & self._held

    def stop(self) -> None:
        """Stop renewing (the leases still held then run out)."""
        self._stop.set()

    def _start(self) -> None:
        if not self.renew_leases:
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            # A forked child inherits no thread: it starts its own.
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="ttsbatch-chunk-leases", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            # A failed round is tried again; a lease running out only costs a spare message.
            with contextlib.suppress(redis.RedisError, BrokerError):
                self.renew_now()
