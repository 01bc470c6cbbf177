"""The Celery tasks: thin wrappers over :mod:`worker.synthesis` and :mod:`worker.finalize`.

The decisions live in two plain functions, :func:`process_chunk` and
:func:`process_finalize`, which return an *outcome*; the Celery wrappers only
turn outcomes into Celery's vocabulary (``retry``, ``Reject``). Tests call the
functions directly, with real Redis and a real store.

A chunk message, in order:

1. dropped if its job failed, was cancelled or already succeeded (no provider call);
2. requeued at once (``Reject(requeue=True)``) if the worker is shutting down;
3. synthesised unless already stored (idempotent), holding a provider lease
   for network engines (:mod:`worker.limits`), with ``should_stop`` checking
   shutdown, cancellation and the chunk's deadline between stream events;
4. counted in Redis; the message that completes the set enqueues ``finalize``.

Failures: a fatal provider error (401/402) fails the whole job at once; other
errors retry with :class:`~worker.retrying.RetryPolicy`'s countdown (the
server's suggested delay first) until the policy gives up, which fails the
chunk and, past the job's failure budget, the job. A job whose chunks retry
more than ``retry_budget`` times each on average fails too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import MaxRetriesExceededError, Reject
from celery.signals import task_failure, worker_shutting_down
from pydantic import ValidationError

from ttsbatch import keys
from ttsbatch.errors import (
    FatalEngineError,
    JobError,
    RetryableEngineError,
    StorageError,
    TtsBatchError,
)
from ttsbatch.messages import (
    FINALIZE_JOB,
    FINALIZE_QUEUE,
    LOCAL_ENGINES,
    SYNTHESIZE_CHUNK,
    ChunkMessage,
    FinalizeMessage,
    encode,
)
from ttsbatch.models import EngineSpec, JobStatus, Manifest
from ttsbatch.settings import Settings
from ttsbatch.state import JobState, mark_manifest
from ttsbatch.storage import Store, open_store
from worker.celery_app import Tuning
from worker.engines import Engine
from worker.engines.factory import create_engine
from worker.finalize import finalize_job
from worker.limits import LimitedEngine, ProviderBusyError, ProviderLimiter
from worker.synthesis import synthesize_chunk

log = logging.getLogger(__name__)

#: Set when the worker starts a warm shutdown: in-flight chunks go back to the queue.
SHUTTING_DOWN = threading.Event()
#: How often ``should_stop`` may ask Redis whether the job was cancelled.
_CANCEL_CHECK_SECONDS = 0.5
#: The finalize lock's lifetime; renewed every third of it while stitching.
FINALIZE_LOCK_TTL = 30.0
_STOPPED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCEEDED})


# -- outcomes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """The chunk (or job) is stored; ``synthesized`` is False if it already was."""

    synthesized: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """Nothing to do (job failed, cancelled or finished; someone else finalizes)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Send ``message`` again after ``countdown`` seconds."""

    countdown: float
    message: dict[str, object]
    reason: str


@dataclass(frozen=True, slots=True)
class Requeue:
    """Put the message back at once: this worker is shutting down."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The chunk or job failed for good; ``reason`` is recorded in state and manifest."""

    reason: str


Outcome = Done | Dropped | Retry | Requeue | Failed


# -- the per-process context ------------------------------------------------------


def provider_of(spec: EngineSpec, settings: Settings) -> str:
    """Return the provider an engine spec talks to: the limits are shared per provider."""
    if spec.engine == "together":
        return f"together:{settings.together.base_url.rstrip('/')}"
    if spec.engine == "openai":
        return f"openai:{settings.openai.base_url.rstrip('/')}"
    return spec.engine


class WorkerContext:
    """What the tasks of one worker process share: store, Redis state, engines, limiters.

    Everything is created on first use, in the process that uses it (a prefork
    child never inherits its parent's connections or native engine state).
    """

    def __init__(
        self,
        settings: Settings,
        tuning: Tuning,
        *,
        send_finalize: Callable[[FinalizeMessage], None],
        store: Store | None = None,
        state: JobState | None = None,
        engine_factory: Callable[[EngineSpec, Settings], Engine] = create_engine,
        shutting_down: threading.Event = SHUTTING_DOWN,
    ) -> None:
        self.settings = settings
        self.tuning = tuning
        self.send_finalize = send_finalize
        self.shutting_down = shutting_down
        self._store = store
        self._state = state
        self._engine_factory = engine_factory
        self._engines: dict[str, Engine] = {}
        self._local = threading.local()
        # Reentrant: engine() holds it while it reaches for state.
        self._lock = threading.RLock()

    @property
    def store(self) -> Store:
        """The job store (``TTSBATCH_STORE``)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.store)
            return self._store

    @property
    def state(self) -> JobState:
        """Job state in Redis (``REDIS_URL``)."""
        with self._lock:
            if self._state is None:
                self._state = JobState.from_url(self.settings.redis_url)
            return self._state

    def engine(self, spec: EngineSpec) -> Engine:
        """Return this process's engine for ``spec``.

        Local engines (espeak) are not thread-safe: each thread gets its own,
        which espeak itself refuses past the first (use a prefork worker).
        Network engines are shared by the threads and hold a provider lease
        per request.
        """
        key = spec.model_dump_json()
        if spec.engine in LOCAL_ENGINES:
            engines: dict[str, Engine] = self._local.__dict__.setdefault("engines", {})
            if key not in engines:
                engines[key] = self._engine_factory(spec, self.settings)
            return engines[key]
        with self._lock:
            if key not in self._engines:
                limiter = ProviderLimiter(
                    self.state.client,
                    provider_of(spec, self.settings),
                    concurrency=self.settings.provider.concurrency,
                    rps=self.settings.provider.rps,
                    lease_ttl=self.tuning.lease_ttl,
                    namespace=self.state.namespace,
                )
                self._engines[key] = LimitedEngine(
                    self._engine_factory(spec, self.settings),
                    limiter,
                    max_wait=self.tuning.slot_wait,
                )
            return self._engines[key]

    def job_status(self, job_id: str) -> JobStatus | None:
        """The job's status: from Redis, else (state wiped) from the stored manifest."""
        status = self.state.status(job_id)
        if status is not None:
            return status
        key = keys.manifest_key(job_id)
        if not self.store.exists(key):
            return None
        return Manifest.model_validate_json(self.store.read(key)).status

    def fail_job(self, job_id: str, reason: str) -> None:
        """Fail the job in Redis and in its stored manifest."""
        self.state.fail(job_id, reason)
        mark_manifest(self.store, job_id, JobStatus.FAILED, reason)


class _ContextHolder:
    """One :class:`WorkerContext` per process (rebuilt after a fork)."""

    def __init__(self, factory: Callable[[], WorkerContext]) -> None:
        self._factory = factory
        self._context: WorkerContext | None = None
        self._pid = -1

    def get(self) -> WorkerContext:
        if self._context is None or self._pid != os.getpid():
            self._context = self._factory()
            self._pid = os.getpid()
        return self._context


# -- synthesize_chunk -------------------------------------------------------------


def _stop_check(ctx: WorkerContext, job_id: str, deadline: float) -> Callable[[], bool]:
    """Return ``should_stop`` for one chunk: shutdown, cancellation or its deadline."""
    next_check = 0.0

    def should_stop() -> bool:
        nonlocal next_check
        if ctx.shutting_down.is_set() or time.monotonic() > deadline:
            return True
        now = time.monotonic()
        if now < next_check:
            return False
        next_check = now + _CANCEL_CHECK_SECONDS
        return ctx.state.status(job_id) in _STOPPED

    return should_stop


def process_chunk(ctx: WorkerContext, message: ChunkMessage, task_id: str) -> Outcome:
    """Make sure one chunk is stored and counted; return what the task must do next."""
    job_id, chunk = message.job_id, message.chunk_id
    status = ctx.job_status(job_id)
    if status in _STOPPED:
        return Dropped(f"job {job_id} is {status}")
    if ctx.shutting_down.is_set():
        return Requeue()
    deadline = time.monotonic() + ctx.tuning.chunk_deadline + ctx.tuning.slot_wait
    try:
        record, synthesized = synthesize_chunk(
            ctx.store,
            ctx.engine(message.engine),
            job_id=job_id,
            doc=message.doc,
            index=message.index,
            text=message.text,
            should_stop=_stop_check(ctx, job_id, deadline),
        )
    except TtsBatchError as exc:
        return _chunk_failure(ctx, message, exc, timed_out=time.monotonic() > deadline)
    result = ctx.state.mark_done(
        job_id,
        chunk,
        chars=len(message.text),
        audio_seconds=record.samples / record.sample_rate,
        synthesized=synthesized,
        claimant=task_id,
    )
    if result.last:
        # If this send fails the task fails before its ack: the redelivered
        # message is the same claimant, so it is told "last" again.
        ctx.send_finalize(FinalizeMessage(job_id=job_id))
    return Done(synthesized)


def _chunk_failure(  # noqa: PLR0911 - one early return per outcome reads clearest
    ctx: WorkerContext, message: ChunkMessage, exc: TtsBatchError, *, timed_out: bool
) -> Outcome:
    job_id, chunk = message.job_id, message.chunk_id
    if isinstance(exc, FatalEngineError):
        reason = f"{chunk}: {exc}"
        ctx.state.fail_chunk(job_id, chunk, str(exc))
        ctx.fail_job(job_id, reason)
        return Failed(reason)
    if ctx.shutting_down.is_set():
        return Requeue()
    status = ctx.job_status(job_id)
    if status in _STOPPED:
        return Dropped(f"job {job_id} is {status}")
    if isinstance(exc, ProviderBusyError):
        # No slot yet: not the chunk's fault, so no attempt is counted.
        countdown = min(exc.retry_after or 1.0, ctx.tuning.max_countdown)
        return Retry(countdown, encode(message), str(exc))
    if timed_out:
        exc = RetryableEngineError(
            f"no complete answer within {ctx.tuning.chunk_deadline:g} s", chunk_index=message.index
        )
    attempt = message.attempt + 1
    delay = ctx.tuning.policy.delay(attempt, exc)
    retries, total = ctx.state.record_error(job_id, chunk, str(exc))
    if delay is None:
        return _fail_chunk(ctx, message, f"{exc} (after {attempt} attempt(s))")
    if retries > max(10, ctx.tuning.retry_budget * total):
        reason = f"too many failed attempts ({retries}); last: {chunk}: {exc}"
        ctx.fail_job(job_id, reason)
        return Failed(reason)
    countdown = min(delay, ctx.tuning.max_countdown)
    return Retry(countdown, encode(message.model_copy(update={"attempt": attempt})), str(exc))


def _fail_chunk(ctx: WorkerContext, message: ChunkMessage, reason: str) -> Outcome:
    job_id, chunk = message.job_id, message.chunk_id
    budget = ctx.tuning.failure_budget
    if ctx.state.fail_chunk(job_id, chunk, reason, budget=budget):
        mark_manifest(ctx.store, job_id, JobStatus.FAILED, f"{chunk}: {reason}")
    return Failed(f"{chunk}: {reason}")


# -- finalize -----------------------------------------------------------------------


@contextlib.contextmanager
def _renewed(state: JobState, job_id: str, owner: str) -> Iterator[None]:
    """Keep the finalize lock alive while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(FINALIZE_LOCK_TTL / 3):
            with contextlib.suppress(redis.RedisError):  # a missed renewal is retried
                state.renew_lock(job_id, owner, FINALIZE_LOCK_TTL)

    thread = threading.Thread(target=renew, name="ttsbatch-finalize-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        state.unlock(job_id, owner)


def process_finalize(ctx: WorkerContext, message: FinalizeMessage) -> Outcome:  # noqa: PLR0911 - one return per outcome
    """Stitch a job once: skip it if stored as succeeded, or if another holds the lock."""
    job_id = message.job_id
    manifest = Manifest.model_validate_json(ctx.store.read(keys.manifest_key(job_id)))
    if manifest.status is JobStatus.SUCCEEDED:
        ctx.state.finish(job_id, JobStatus.SUCCEEDED)
        return Dropped(f"job {job_id} is already stitched")
    status = ctx.state.status(job_id)
    if status in _STOPPED or manifest.status in _STOPPED:
        return Dropped(f"job {job_id} is {status or manifest.status}")
    owner = uuid.uuid4().hex
    if not ctx.state.lock(job_id, owner, FINALIZE_LOCK_TTL):
        return Dropped(f"job {job_id} is being stitched by another worker")
    snapshot = ctx.state.snapshot(job_id)
    keep = message.keep_chunks or (snapshot is not None and snapshot.keep_chunks)
    try:
        with _renewed(ctx.state, job_id, owner):
            finalize_job(ctx.store, manifest, keep_chunks=keep)
    except JobError as exc:
        reason = f"{exc}: run `ttsbatch resume {job_id}`"
        ctx.fail_job(job_id, reason)
        return Failed(reason)
    except StorageError as exc:
        attempt = message.attempt + 1
        delay = ctx.tuning.policy.delay(attempt, exc)
        if delay is None:
            ctx.fail_job(job_id, f"stitching failed: {exc}")
            return Failed(str(exc))
        update = {"attempt": attempt}
        return Retry(
            min(delay, ctx.tuning.max_countdown),
            encode(message.model_copy(update=update)),
            str(exc),
        )
    ctx.state.finish(job_id, JobStatus.SUCCEEDED)
    return Done(synthesized=True)


# -- Celery -----------------------------------------------------------------------


def _on_shutdown(**_: object) -> None:
    SHUTTING_DOWN.set()


def _apply(task: Task[Any, Any], outcome: Outcome, what: str) -> None:
    """Turn an outcome into Celery's terms."""
    if isinstance(outcome, Requeue):
        log.info("%s: worker shutting down, back to the queue", what)
        raise Reject("worker shutting down", requeue=True)
    if isinstance(outcome, Retry):
        log.info("%s: retry in %.2f s: %s", what, outcome.countdown, outcome.reason)
        raise task.retry(kwargs={"message": outcome.message}, countdown=outcome.countdown)
    if isinstance(outcome, Failed):
        log.warning("%s: failed: %s", what, outcome.reason)
    elif isinstance(outcome, Dropped):
        log.info("%s: dropped: %s", what, outcome.reason)
    else:
        log.info("%s: done%s", what, "" if outcome.synthesized else " (already stored)")


def register_tasks(app: Celery, settings: Settings, tuning: Tuning) -> None:
    """Register ``synthesize_chunk`` and ``finalize`` on ``app``.

    ``shared=False``: a shared task is copied into every Celery app the process
    creates later (e.g. a second app in tests), where Celery 5.7 warns about
    the duplicate name.
    """

    def send_finalize(message: FinalizeMessage) -> None:
        app.send_task(FINALIZE_JOB, kwargs={"message": encode(message)}, queue=FINALIZE_QUEUE)

    holder = _ContextHolder(lambda: WorkerContext(settings, tuning, send_finalize=send_finalize))
    worker_shutting_down.connect(_on_shutdown, weak=False, dispatch_uid="ttsbatch-shutdown")

    @app.task(name=SYNTHESIZE_CHUNK, bind=True, max_retries=tuning.max_retries, shared=False)
    def synthesize_chunk_task(self: Task[Any, Any], message: dict[str, Any]) -> None:
        try:
            chunk = ChunkMessage.model_validate(message)
        except ValidationError as exc:
            log.error("dropping a malformed chunk message: %s", exc)  # noqa: TRY400 - no traceback needed
            return
        ctx = holder.get()
        what = f"{chunk.job_id} {chunk.chunk_id}"
        try:
            outcome = process_chunk(ctx, chunk, self.request.id or "")
        except Exception as exc:
            log.exception("%s: unexpected error", what)
            outcome = _fail_chunk(ctx, chunk, f"internal error: {exc!r}")
        try:
            _apply(self, outcome, what)
        except MaxRetriesExceededError:
            _fail_chunk(ctx, chunk, f"gave up after {self.request.retries} retries")

    @app.task(name=FINALIZE_JOB, bind=True, max_retries=tuning.max_retries, shared=False)
    def finalize_task(self: Task[Any, Any], message: dict[str, Any]) -> None:
        final = FinalizeMessage.model_validate(message)
        ctx = holder.get()
        try:
            outcome = process_finalize(ctx, final)
        except Exception as exc:
            log.exception("%s: unexpected error while stitching", final.job_id)
            ctx.fail_job(final.job_id, f"stitching failed: {exc!r}")
            return
        try:
            _apply(self, outcome, f"{final.job_id} finalize")
        except MaxRetriesExceededError:
            ctx.fail_job(final.job_id, "stitching kept failing")

    def on_worker_lost(sender: object = None, exception: object = None, **extra: Any) -> None:
        # retry_on_worker_lost ran out of retries: the chunk fails instead of hanging the job.
        if not isinstance(exception, WorkerLostError):
            return
        kwargs = extra.get("kwargs") or {}
        with contextlib.suppress(ValidationError, TtsBatchError, redis.RedisError):
            chunk = ChunkMessage.model_validate(kwargs.get("message"))
            _fail_chunk(holder.get(), chunk, f"its worker process died repeatedly: {exception}")

    task_failure.connect(on_worker_lost, sender=synthesize_chunk_task, weak=False)
