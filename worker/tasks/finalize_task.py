"""The logic of ``finalize``: stitch a job once, under a lock renewed while it runs."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import redis

from ttsbatch.errors import BrokerError, JobError, StorageError
from ttsbatch.manifests import read_manifest
from ttsbatch.messages import FinalizeMessage, encode
from ttsbatch.models import JobStatus
from ttsbatch.state import JobState
from worker.finalize import finalize_job
from worker.tasks.chunk_task import STOPPED
from worker.tasks.context import WorkerContext
from worker.tasks.outcomes import Done, Dropped, Failed, Outcome, Retry

#: The finalize lock's lifetime; renewed every third of it while stitching.
FINALIZE_LOCK_TTL = 30.0


@contextlib.contextmanager
def _renewed(state: JobState, job_id: str, owner: str) -> Iterator[None]:
    """Keep the finalize lock alive while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(FINALIZE_LOCK_TTL / 3):
            with contextlib.suppress(redis.RedisError, BrokerError):  # a missed renewal is retried
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
    manifest = read_manifest(ctx.store, job_id)
    if manifest.status is JobStatus.SUCCEEDED:
        ctx.state.finish(job_id, JobStatus.SUCCEEDED)
        return Dropped(f"job {job_id} is already stitched")
    status = ctx.state.status(job_id)
    if status in STOPPED or manifest.status in STOPPED:
        return Dropped(f"job {job_id} is {status or manifest.status}")
    owner = uuid.uuid4().hex
    if not ctx.state.lock(job_id, owner, FINALIZE_LOCK_TTL):
        return Dropped(f"job {job_id} is being stitched by another worker")
    snapshot = ctx.state.snapshot(job_id)
    keep = message.keep_chunks or (snapshot is not None and snapshot.keep_chunks)
    try:
        with _renewed(ctx.state, job_id, owner):
            price = ctx.settings.price_of(
                manifest.options.engine.engine, manifest.options.engine.model
            )
            finalize_job(ctx.store, manifest, keep_chunks=keep, price_per_million=price)
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
