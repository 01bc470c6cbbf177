"""The logic of ``synthesize_chunk``: one chunk stored and counted, or what to do instead.

A chunk message, in order:

1. dropped if its job failed, was cancelled or already succeeded (no provider call);
2. dropped if another live worker holds the chunk's lease (a redelivered or
   re-sent copy), else the chunk's lease is taken, renewed while this attempt
   lasts (:mod:`worker.tasks.leases`, :mod:`ttsbatch.state.leases`);
3. requeued at once (``Reject(requeue=True)``) if the worker is shutting down;
4. synthesised unless already stored (idempotent), holding a provider lease
   for network engines (:mod:`worker.limits`), with ``should_stop`` checking
   shutdown, cancellation, the chunk's deadline and its lease between stream events;
5. counted in Redis (which ends its lease); the message that completes the set
   enqueues ``finalize``.

Failures: a fatal provider error (401/402) fails the whole job at once, and so
does a chunk its job cannot afford (its caps, its tenant's month: it is not
sent, and a retry after the cap is raised makes only what is missing); other
errors retry with :class:`~worker.retrying.RetryPolicy`'s countdown (the
server's suggested delay first) until the policy gives up, which fails the
chunk and, past the job's failure budget, the job. A job whose chunks retry
more than ``retry_budget`` times each on average fails too. A retried chunk
stays leased for its countdown plus one lease lifetime, so that a retry held
by a worker that dies comes back too; a requeued one takes its place at the
back of the job's queue order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from ttsbatch.billing import Billing, JobSpend
from ttsbatch.cache import ChunkCache, UseLog
from ttsbatch.errors import BudgetError, FatalEngineError, RetryableEngineError, TtsBatchError
from ttsbatch.messages import ChunkMessage, FinalizeMessage, encode
from ttsbatch.models import JobStatus
from ttsbatch.state import Take, mark_manifest
from ttsbatch.usage import Spend
from worker.limits import ProviderBusyError
from worker.synthesis import synthesize_chunk
from worker.tasks.context import WorkerContext
from worker.tasks.leases import HeldLease
from worker.tasks.outcomes import Done, Dropped, Failed, Outcome, Requeue, Retry

#: How often ``should_stop`` may ask Redis whether the job was cancelled.
_CANCEL_CHECK_SECONDS = 0.5
STOPPED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCEEDED})


def _stop_check(
    ctx: WorkerContext, job_id: str, deadline: float, lease: HeldLease | None
) -> Callable[[], bool]:
    """Return ``should_stop`` for one chunk: shutdown, its deadline, a lost lease, cancellation.

    A job that failed meanwhile (a cap reached by another chunk, a budget of
    failures) does not stop a request in flight: it was paid for, so its
    chunk is stored for the retry that finishes the job.
    """
    next_check = 0.0

    def should_stop() -> bool:
        nonlocal next_check
        if ctx.shutting_down.is_set() or time.monotonic() > deadline:
            return True
        if ctx.keeper.lost(lease):
            return True
        now = time.monotonic()
        if now < next_check:
            return False
        next_check = now + _CANCEL_CHECK_SECONDS
        return ctx.state.status(job_id) is JobStatus.CANCELLED

    return should_stop


def process_chunk(
    ctx: WorkerContext, message: ChunkMessage, task_id: str, *, redelivered: bool = False
) -> Outcome:
    """Make sure one chunk is stored and counted; return what the task must do next.

    Args:
        task_id: the message's task id (the same for its retries).
        redelivered: the broker delivered the message before (a restore or requeue).
    """
    job_id, chunk = message.job_id, message.chunk_id
    status = ctx.job_status(job_id)
    if status in STOPPED:
        return Dropped(f"job {job_id} is {status}")
    owner = uuid.uuid4().hex
    taken = ctx.state.leases.take(
        job_id,
        chunk,
        owner=owner,
        task_id=task_id,
        ttl=ctx.tuning.lease_ttl,
        redelivered=redelivered,
    )
    if taken is Take.BUSY:
        return Dropped(f"{chunk} is being synthesised by another worker (it holds the lease)")
    lease = HeldLease(job_id, chunk, owner) if taken is Take.TAKEN else None
    with ctx.keeper.holding(lease):
        outcome = _attempt(ctx, message, lease, task_id)
    return _let_go(ctx, lease, outcome, task_id)


def _attempt(
    ctx: WorkerContext, message: ChunkMessage, lease: HeldLease | None, task_id: str
) -> Outcome:
    job_id, chunk = message.job_id, message.chunk_id
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
            should_stop=_stop_check(ctx, job_id, deadline, lease),
            retries=message.attempt,
            cache=_cache(ctx, message),
            engine_spec=message.engine,
            spend=_spender(ctx, message),
        )
    except TtsBatchError as exc:
        if not isinstance(exc, FatalEngineError) and ctx.keeper.lost(lease):
            return Dropped(f"{chunk}: its lease passed to another message; stopped")
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


def _cache(ctx: WorkerContext, message: ChunkMessage) -> ChunkCache | None:
    """The chunk cache the message names (hits noted in Redis, for eviction), if any."""
    if message.cache_scope is None:
        return None
    return ChunkCache(ctx.store, message.cache_scope, UseLog.of(ctx.state))


def _spender(ctx: WorkerContext, message: ChunkMessage) -> Spend | None:
    """What takes the chunk's characters from its job's caps (and its tenant's month)."""
    limit = message.limit
    if limit is None:
        return None
    return JobSpend(Billing.of(ctx.state), message.job_id, limit)


def _let_go(ctx: WorkerContext, lease: HeldLease | None, outcome: Outcome, task_id: str) -> Outcome:
    """Turn the chunk's lease into what follows the attempt: a retry's wait, or a place in the queue."""
    if lease is None:
        return outcome
    if isinstance(outcome, Retry):
        seconds = outcome.countdown + ctx.tuning.lease_ttl
        kept = ctx.state.leases.hold_for_retry(
            lease.job_id, lease.chunk, owner=lease.owner, seconds=seconds
        )
    elif isinstance(outcome, Requeue):
        kept = ctx.state.leases.requeue(
            lease.job_id, lease.chunk, owner=lease.owner, task_id=task_id
        )
    else:
        return outcome
    if not kept:
        return Dropped(f"{lease.chunk}: its lease passed to another message meanwhile")
    return outcome


def _chunk_failure(  # noqa: PLR0911 - one early return per outcome reads clearest
    ctx: WorkerContext, message: ChunkMessage, exc: TtsBatchError, *, timed_out: bool
) -> Outcome:
    job_id, chunk = message.job_id, message.chunk_id
    if isinstance(exc, FatalEngineError | BudgetError):
        reason = f"{chunk}: {exc}"
        ctx.state.fail_chunk(job_id, chunk, str(exc))
        ctx.fail_job(job_id, reason)
        return Failed(reason)
    if ctx.shutting_down.is_set():
        return Requeue()
    status = ctx.job_status(job_id)
    if status in STOPPED:
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
        return fail_chunk(ctx, message, f"{exc} (after {attempt} attempt(s))")
    if retries > max(10, ctx.tuning.retry_budget * total):
        reason = f"too many failed attempts ({retries}); last: {chunk}: {exc}"
        ctx.fail_job(job_id, reason)
        return Failed(reason)
    countdown = min(delay, ctx.tuning.max_countdown)
    return Retry(countdown, encode(message.model_copy(update={"attempt": attempt})), str(exc))


def fail_chunk(ctx: WorkerContext, message: ChunkMessage, reason: str) -> Outcome:
    """Record that a chunk failed for good; past the job's failure budget, the job fails."""
    job_id, chunk = message.job_id, message.chunk_id
    budget = ctx.tuning.failure_budget
    if ctx.state.fail_chunk(job_id, chunk, reason, budget=budget):
        mark_manifest(ctx.store, job_id, JobStatus.FAILED, f"{chunk}: {reason}")
    return Failed(f"{chunk}: {reason}")
