"""The Celery tasks: thin wrappers over :mod:`worker.synthesis` and :mod:`worker.finalize`.

The decisions live in two plain functions, :func:`process_chunk`
(:mod:`worker.tasks.chunk_task`) and :func:`process_finalize`
(:mod:`worker.tasks.finalize_task`), which return an *outcome*
(:mod:`worker.tasks.outcomes`); the Celery wrappers here only turn outcomes
into Celery's vocabulary (``retry``, ``Reject``). Tests call the functions
directly, with real Redis and a real store. What a worker process shares is its
:class:`WorkerContext` (:mod:`worker.tasks.context`); the chunk leases it holds
are renewed by its :class:`LeaseKeeper` (:mod:`worker.tasks.leases`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import MaxRetriesExceededError, Reject
from celery.signals import task_failure, worker_shutting_down
from pydantic import ValidationError

from ttsbatch.errors import TtsBatchError
from ttsbatch.messages import (
    FINALIZE_JOB,
    FINALIZE_QUEUE,
    SYNTHESIZE_CHUNK,
    ChunkMessage,
    FinalizeMessage,
    encode,
)
from ttsbatch.settings import Settings
from worker.celery_app import Tuning
from worker.tasks.chunk_task import fail_chunk, process_chunk
from worker.tasks.context import SHUTTING_DOWN, ContextHolder, WorkerContext, provider_of
from worker.tasks.finalize_task import FINALIZE_LOCK_TTL, process_finalize
from worker.tasks.leases import HeldLease, LeaseKeeper
from worker.tasks.outcomes import Done, Dropped, Failed, Outcome, Requeue, Retry

__all__ = [
    "FINALIZE_LOCK_TTL",
    "SHUTTING_DOWN",
    "Done",
    "Dropped",
    "Failed",
    "HeldLease",
    "LeaseKeeper",
    "Outcome",
    "Requeue",
    "Retry",
    "WorkerContext",
    "process_chunk",
    "process_finalize",
    "provider_of",
    "register_tasks",
]

log = logging.getLogger(__name__)


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


def _redelivered(task: Task[Any, Any]) -> bool:
    """Whether the broker delivered this message before (restored or requeued)."""
    info = task.request.delivery_info or {}
    return bool(info.get("redelivered"))


def register_tasks(app: Celery, settings: Settings, tuning: Tuning) -> None:
    """Register ``synthesize_chunk`` and ``finalize`` on ``app``.

    ``shared=False``: a shared task is copied into every Celery app the process
    creates later (e.g. a second app in tests), where Celery 5.7 warns about
    the duplicate name.
    """

    def send_finalize(message: FinalizeMessage) -> None:
        app.send_task(FINALIZE_JOB, kwargs={"message": encode(message)}, queue=FINALIZE_QUEUE)

    holder = ContextHolder(lambda: WorkerContext(settings, tuning, send_finalize=send_finalize))
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
            outcome = process_chunk(
                ctx, chunk, self.request.id or "", redelivered=_redelivered(self)
            )
        except Exception as exc:
            log.exception("%s: unexpected error", what)
            outcome = fail_chunk(ctx, chunk, f"internal error: {exc!r}")
        try:
            _apply(self, outcome, what)
        except MaxRetriesExceededError:
            fail_chunk(ctx, chunk, f"gave up after {self.request.retries} retries")

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
            fail_chunk(holder.get(), chunk, f"its worker process died repeatedly: {exception}")

    task_failure.connect(on_worker_lost, sender=synthesize_chunk_task, weak=False)
