"""Where the local executor synthesises chunks: processes for espeak, threads for providers.

espeak-ng burns CPU and is not thread-safe: it runs in a pool of processes,
one engine each, that hand each chunk's PCM back through a slots file
(:mod:`ttsbatch.executors.slots`). A provider engine (together, openai) mostly waits on
the network: it runs on threads of this process that share one engine, hence
one httpx client (thread-safe, one connection pool), so nothing starts up per
slot and many requests can be in flight. Which kind an engine is comes from
:data:`ttsbatch.messages.LOCAL_ENGINES`, as it does for the Celery queues.

Retries of a chunk happen here, in the task layer, and nowhere else.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ttsbatch.cache import ChunkCache, chunk_address
from ttsbatch.errors import EngineError, JobError, TtsBatchError
from ttsbatch.executors.reporting import ChunkDone
from ttsbatch.executors.slots import Slots
from ttsbatch.messages import LOCAL_ENGINES
from ttsbatch.models import ChunkRecord, EngineSpec, JobOptions
from ttsbatch.settings import Settings
from ttsbatch.usage import Allowance, Spend
from worker.engines import Engine
from worker.engines.factory import create_engine
from worker.retrying import RetryPolicy
from worker.synthesis import synthesize_record


@dataclass(frozen=True, slots=True)
class Synthesized:
    """A chunk back from the pool; its PCM is in its slot when ``pcm`` is None."""

    done: ChunkDone
    record: ChunkRecord
    pcm: bytes | None


#: Keeps a chunk just synthesised (its record and PCM) where a later run finds it.
Keeper = Callable[[ChunkRecord, bytes | memoryview], None]


class ChunkPool(Protocol):
    """Synthesises chunks concurrently; results come back as futures."""

    workers: int
    uses_slots: bool

    def submit(self, doc: str, index: int, text: str, slot: int | None) -> Future[Synthesized]:
        """Start chunk ``index`` of ``doc``; its PCM goes to ``slot`` if it can."""
        ...

    def keeper(self, text: str) -> Keeper | None:
        """What keeps the chunk of ``text`` once synthesised (``None``: nothing keeps it)."""
        ...

    def close(self, *, clean: bool) -> None:
        """Wait for the pool to end; unless ``clean``, abandon what is in flight."""
        ...


class CachingPool:
    """A pool that answers from the chunk cache where it can, and keeps what it synthesises.

    A cached chunk comes back as an already finished future, marked not
    synthesised; the others go to the pool underneath.
    """

    def __init__(self, inner: ChunkPool, cache: ChunkCache, engine: EngineSpec) -> None:
        self.inner, self.cache, self.engine = inner, cache, engine
        self.workers, self.uses_slots = inner.workers, inner.uses_slots

    def submit(self, doc: str, index: int, text: str, slot: int | None) -> Future[Synthesized]:
        """Return the cached chunk, or start it in the pool underneath."""
        found = self.cache.get(chunk_address(self.engine, text), index)
        if found is None:
            return self.inner.submit(doc, index, text, slot)
        record, pcm = found
        done = ChunkDone(doc, index, len(text), record.samples / record.sample_rate, False)
        future: Future[Synthesized] = Future()
        future.set_result(Synthesized(done, record, pcm))
        return future

    def keeper(self, text: str) -> Keeper:
        """Keep the chunk of ``text`` in the cache."""
        address = chunk_address(self.engine, text)
        return lambda record, pcm: self.cache.put(address, record, pcm)

    def close(self, *, clean: bool) -> None:
        """Close the pool underneath."""
        self.inner.close(clean=clean)


def on_threads(engine: str) -> bool:
    """Whether ``engine`` runs on threads (a provider) rather than processes (espeak)."""
    return engine not in LOCAL_ENGINES


def default_jobs(engine: str, settings: Settings) -> int:
    """Chunks in flight without ``-j``: the provider concurrency, or one process per core."""
    if on_threads(engine):
        return settings.provider.concurrency
    return os.cpu_count() or 1


def open_pool(
    options: JobOptions,
    settings: Settings,
    *,
    workers: int,
    policy: RetryPolicy,
    slots: Slots | None,
    cache: ChunkCache | None = None,
    spend: Allowance | None = None,
) -> ChunkPool:
    """Return the pool that suits the job's engine (see the module docstring), in front of
    ``cache`` if there is one; every request takes its characters from ``spend`` first.

    Raises:
        ConfigError: the engine cannot be built (threads build it here, at once).
    """
    pool: ChunkPool
    if on_threads(options.engine.engine):
        engine = create_engine(options.engine, settings)
        pool = ThreadPool(engine, workers=workers, policy=policy, spend=spend)
    else:
        pool = ProcessPool(
            options, settings, workers=workers, policy=policy, slots=slots, spend=spend
        )
    return pool if cache is None else CachingPool(pool, cache, options.engine)


def synthesize_chunk(
    engine: Engine,
    doc: str,
    index: int,
    text: str,
    policy: RetryPolicy,
    *,
    stop: threading.Event | None = None,
    spend: Spend | None = None,
) -> tuple[ChunkDone, ChunkRecord, bytes]:
    """Synthesise one chunk, retrying as the policy says; ``stop`` abandons it.

    Each attempt takes its characters from ``spend`` first (a job at its cap stops).
    """
    attempt = 0
    should_stop = stop.is_set if stop is not None else None
    while True:
        if stop is not None and stop.is_set():
            raise JobError(f"{doc} chunk {index}: abandoned, the run is stopping")
        try:
            record, pcm = synthesize_record(
                engine,
                index=index,
                text=text,
                should_stop=should_stop,
                retries=attempt,
                spend=spend,
            )
        except TtsBatchError as exc:
            attempt += 1
            delay = policy.delay(attempt, exc)
            if delay is None:
                if isinstance(exc, EngineError):
                    exc.chunk_index = index
                    exc.add_note(f"{doc} chunk {index}, after {attempt} attempt(s)")
                raise
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
        else:
            done = ChunkDone(doc, index, len(text), record.samples / record.sample_rate, True)
            return done, record, pcm


class ThreadPool:
    """Chunks on threads of this process, sharing one (network) engine."""

    uses_slots = False

    def __init__(
        self, engine: Engine, *, workers: int, policy: RetryPolicy, spend: Spend | None = None
    ) -> None:
        self.engine = engine
        self.workers = workers
        self.policy = policy
        self.spend = spend
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ttsbatch-chunk")

    def submit(self, doc: str, index: int, text: str, slot: int | None) -> Future[Synthesized]:
        """Start a chunk on a thread; its PCM comes back in the result (no slot)."""
        return self._pool.submit(self._run, doc, index, text)

    def _run(self, doc: str, index: int, text: str) -> Synthesized:
        done, record, pcm = synthesize_chunk(
            self.engine, doc, index, text, self.policy, stop=self.stop, spend=self.spend
        )
        return Synthesized(done, record, pcm)

    def keeper(self, text: str) -> Keeper | None:
        """Nothing keeps a chunk here (see :class:`CachingPool`)."""
        return None

    def close(self, *, clean: bool) -> None:
        """Wait for the threads, then close the engine.

        Unless ``clean``, queued chunks are dropped and requests in flight are
        abandoned at their next stream event (or their read timeout).
        """
        if not clean:
            self.stop.set()
        try:
            self._pool.shutdown(wait=True, cancel_futures=not clean)
        finally:
            self.engine.close()


_engine: Engine | None = None
_slots: Slots | None = None
_spend: Allowance | None = None


def _init_process(
    options: JobOptions,
    settings: Settings,
    slots: tuple[Path, int] | None,
    spend: Allowance | None,
) -> None:
    """Pool initializer: one engine per process, the shared slots and allowance."""
    global _engine, _slots, _spend  # noqa: PLW0603 - per-process state is the point of an initializer
    # Ctrl-C goes to the parent, which stops the pool; children must not die mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine = create_engine(options.engine, settings)
    _slots = Slots(*slots) if slots else None
    _spend = spend


def _run_in_process(
    doc: str, index: int, text: str, policy: RetryPolicy, slot: int | None
) -> Synthesized:
    """Synthesise one chunk in a pool process; its PCM goes to its slot if it fits."""
    assert _engine is not None, "pool process not initialised"  # noqa: S101
    done, record, pcm = synthesize_chunk(_engine, doc, index, text, policy, spend=_spend)
    if _slots is not None and slot is not None and _slots.put(slot, pcm):
        return Synthesized(done, record, None)
    return Synthesized(done, record, pcm)


class ProcessPool:
    """Chunks on processes, one engine each (espeak-ng is not thread-safe)."""

    uses_slots = True

    def __init__(
        self,
        options: JobOptions,
        settings: Settings,
        *,
        workers: int,
        policy: RetryPolicy,
        slots: Slots | None,
        spend: Allowance | None = None,
    ) -> None:
        self.workers = workers
        self.policy = policy
        # spawn: children must not inherit a parent's native engine state or threads.
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
            initargs=(options, settings, (slots.path, slots.count) if slots else None, spend),
        )

    def submit(self, doc: str, index: int, text: str, slot: int | None) -> Future[Synthesized]:
        """Start a chunk in a pool process."""
        return self._pool.submit(_run_in_process, doc, index, text, self.policy, slot)

    def keeper(self, text: str) -> Keeper | None:
        """Nothing keeps a chunk here (see :class:`CachingPool`)."""
        return None

    def close(self, *, clean: bool) -> None:
        """Wait for the processes; unless ``clean``, stop them now (assembled chunks are kept)."""
        if clean:
            self._pool.shutdown(wait=True)
            return
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
