"""The distributed executor: a job planned into the store, run by Celery workers.

The caller ingests; :func:`run_distributed` plans into the store of
``TTSBATCH_STORE``, records the job in Redis, sends one message per missing
chunk, and follows progress from Redis (a poll with a deadline, never
``AsyncResult.get()``), reporting through the same :class:`~ttsbatch.executors.reporting.Progress`
as the local executor. :func:`resume_job` restarts a job from the store alone
(e.g. after Redis lost everything); :func:`cancel_job` stops one.
:func:`submit`, :func:`start` and :func:`cancel` do the same without following
or owning connections; the REST API calls them with its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from celery import Celery

from scheduler.dispatch import create_producer
from scheduler.planning import plan_into, start_job
from scheduler.rescue import STALL_AFTER, rescue_active, rescue_job
from ttsbatch.billing import Billing
from ttsbatch.errors import JobError, StorageError
from ttsbatch.executors.reporting import ChunkDone, Progress
from ttsbatch.manifests import find_manifest, write_manifest
from ttsbatch.messages import chunk_id
from ttsbatch.models import Document, JobOptions, JobStatus, Manifest, SpendLimit
from ttsbatch.settings import Settings
from ttsbatch.state import CANCELLED_BY_USER, JobSnapshot, JobState, Rescue, mark_manifest
from ttsbatch.storage import Store, open_store

#: Seconds between two looks at the job's state.
POLL_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class Cluster:
    """The connections a client needs: the store, job state, and a producer."""

    store: Store
    state: JobState
    producer: Celery

    @classmethod
    def connect(cls, settings: Settings, *, store: Store | None = None) -> Cluster:
        """Open the store of ``settings.store`` and the Redis of ``settings.redis_url``."""
        return cls(
            store=store or open_store(settings.store),
            state=JobState.from_url(settings.redis_url),
            producer=create_producer(settings),
        )

    def close(self) -> None:
        """Close the Redis connections."""
        self.state.client.close()
        self.producer.close()


@contextlib.contextmanager
def _connected(settings: Settings, cluster: Cluster | None) -> Iterator[Cluster]:
    """Use ``cluster``, or connect one for the call and close it afterwards."""
    if cluster is not None:
        yield cluster
        return
    owned = Cluster.connect(settings)
    try:
        yield owned
    finally:
        owned.close()


def run_distributed(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    settings: Settings,
    progress: Progress | None = None,
    keep_chunks: bool = False,
    timeout: float | None = None,
    cluster: Cluster | None = None,
    cache_scope: str | None = None,
    limit: SpendLimit | None = None,
) -> tuple[Store, Manifest]:
    """Plan, dispatch and follow a job to its end; return the store and final manifest.

    ``cache_scope`` names the chunk cache (in the store) the workers use;
    ``limit`` what the job may send in all (a rerun under a new one goes on).

    Running it again with the same documents and options resumes the job:
    chunks already in the store are neither sent nor synthesised again.

    Raises:
        JobError: the job failed (with each failed chunk's last error), was
            cancelled, lost its Redis state, or outlived ``timeout``.
    """
    with _connected(settings, cluster) as live:
        manifest, texts = _plan(live.store, documents, options, cache_scope=cache_scope)
        if manifest.limit != limit:
            manifest = manifest.model_copy(update={"limit": limit})
            write_manifest(live.store, manifest)
        return _run(live, manifest, texts, progress, keep_chunks=keep_chunks, timeout=timeout)


def submit(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    settings: Settings,
    keep_chunks: bool = False,
    job_id: str | None = None,
    cluster: Cluster | None = None,
) -> Manifest:
    """Plan and dispatch a job without following it; return its manifest.

    ``job_id`` overrides the id derived from the documents and options (the
    API derives one per tenant). A job the store holds as succeeded is
    returned as it is, not run again.
    """
    with _connected(settings, cluster) as live:
        manifest, texts = _plan(live.store, documents, options, job_id=job_id)
        if manifest.status is not JobStatus.SUCCEEDED:
            start(live, manifest, texts, keep_chunks=keep_chunks)
        return manifest


def resume_job(
    job_id: str,
    *,
    settings: Settings,
    progress: Progress | None = None,
    keep_chunks: bool = False,
    timeout: float | None = None,
    cluster: Cluster | None = None,
) -> tuple[Store, Manifest]:
    """Finish a job from what the store holds; Redis state is rebuilt, stored chunks are kept.

    Raises:
        JobError: the job is unknown to the store, or failed again.
    """
    with _connected(settings, cluster) as live:
        manifest = load_manifest(live.store, job_id)
        return _run(live, manifest, None, progress, keep_chunks=keep_chunks, timeout=timeout)


def cancel_job(job_id: str, *, settings: Settings, cluster: Cluster | None = None) -> bool:
    """Cancel a job: its queued chunks are dropped without calling the provider.

    Returns:
        Whether the job was still active (False if it had already ended).
    """
    with _connected(settings, cluster) as live:
        return cancel(live, load_manifest(live.store, job_id))


def cancel(cluster: Cluster, manifest: Manifest) -> bool:
    """Cancel the job of ``manifest`` unless it succeeded; record that in its manifest.

    Returns:
        Whether the job was still active (False if it had already ended).
    """
    if manifest.status is JobStatus.SUCCEEDED:
        return False
    changed = cluster.state.cancel(manifest.job_id)
    if changed:
        mark_manifest(cluster.store, manifest.job_id, JobStatus.CANCELLED, CANCELLED_BY_USER)
    return changed


def job_status(
    job_id: str, *, settings: Settings, cluster: Cluster | None = None
) -> tuple[Manifest, JobSnapshot | None, int]:
    """Return a job's stored manifest, its live state in Redis (None if Redis has none)
    and the characters it sent so far (its caps' tally, retries counted)."""
    with _connected(settings, cluster) as live:
        manifest = load_manifest(live.store, job_id)
        return manifest, live.state.snapshot(job_id), Billing.of(live.state).sent(job_id)


def load_manifest(store: Store, job_id: str) -> Manifest:
    """Read a job's manifest.

    Raises:
        JobError: the store holds no such job, or its manifest is unreadable.
    """
    try:
        manifest = find_manifest(store, job_id)
    except (StorageError, ValueError) as exc:
        raise JobError(f"job {job_id}: unreadable manifest ({exc})", job_id=job_id) from exc
    if manifest is None:
        raise JobError(f"no job {job_id} in {store.url}: check the id and TTSBATCH_STORE")
    return manifest


def _plan(
    store: Store,
    documents: Sequence[Document],
    options: JobOptions,
    *,
    job_id: str | None = None,
    cache_scope: str | None = None,
) -> tuple[Manifest, dict[str, str]]:
    """Write the job's plan to the store; return the manifest in force and the texts by doc."""
    manifest, texts, _ = plan_into(
        store, documents, options, job_id=job_id, cache_scope=cache_scope
    )
    return manifest, texts


def _run(
    cluster: Cluster,
    manifest: Manifest,
    texts: Mapping[str, str] | None,
    progress: Progress | None,
    *,
    keep_chunks: bool,
    timeout: float | None,
) -> tuple[Store, Manifest]:
    progress = progress or Progress()
    total = sum(len(plan.chunks) for plan in manifest.documents)
    if manifest.status is JobStatus.SUCCEEDED:
        progress.start(manifest, total, total)
        return cluster.store, manifest
    snapshot = start(cluster, manifest, texts, keep_chunks=keep_chunks)
    progress.start(manifest, snapshot.done, snapshot.total)
    return cluster.store, follow(cluster, manifest, progress, timeout=timeout)


def start(
    cluster: Cluster,
    manifest: Manifest,
    texts: Mapping[str, str] | None = None,
    *,
    keep_chunks: bool = False,
) -> JobSnapshot:
    """Record a planned job in Redis from the store and send the chunks it misses.

    A failed or cancelled job runs again, re-running only what is missing.
    ``texts`` are the documents' texts by doc id; without them the source
    texts stored beside the plan are read.
    """
    return start_job(
        cluster.store, cluster.state, cluster.producer, manifest, texts, keep_chunks=keep_chunks
    )


def rescue_stalled(cluster: Cluster, *, stall_after: float = STALL_AFTER) -> dict[str, Rescue]:
    """Re-send what each active job waits for (:mod:`scheduler.rescue`).

    Chunks whose lease ran out (their worker died, their message was lost)
    first; then, for a job stalled ``stall_after`` seconds, its missing chunks
    or its finalize. For jobs nobody follows (submitted over the API): the
    beat runs this periodically. Ended or vanished jobs leave the active list.

    Returns:
        What was re-sent, by job id.
    """
    return rescue_active(cluster.store, cluster.state, cluster.producer, stall_after=stall_after)


def follow(
    cluster: Cluster,
    manifest: Manifest,
    progress: Progress,
    *,
    timeout: float | None = None,
    stall_after: float = STALL_AFTER,
) -> Manifest:
    """Report progress until the job ends; return its final manifest.

    At each look, chunks whose lease ran out are sent again, and a job that
    makes no progress for ``stall_after`` seconds gets its missing chunks sent
    again (:mod:`scheduler.rescue`).

    Raises:
        JobError: failed, cancelled, state lost, or ``timeout`` seconds passed.
    """
    job_id = manifest.job_id
    spans = {
        chunk_id(plan.doc, chunk.index): chunk.char_end - chunk.char_start
        for plan in manifest.documents
        for chunk in plan.chunks
    }
    deadline = None if timeout is None else time.monotonic() + timeout
    cursor = 0
    stitching = False
    while True:
        events = cluster.state.events(job_id, cursor)
        cursor += len(events)
        for event in events:
            chars = spans.get(event.chunk, 0)
            progress.advance(
                ChunkDone(event.doc, event.index, chars, event.audio_seconds, event.synthesized)
            )
        snapshot = cluster.state.snapshot(job_id)
        if snapshot is None:
            raise JobError(
                f"job {job_id}: its state vanished from Redis (flushed or restarted);"
                f" the store keeps its chunks: run `ttsbatch resume {job_id}`",
                job_id=job_id,
            )
        if snapshot.status is JobStatus.STITCHING and not stitching:
            stitching = True
            progress.stage(JobStatus.STITCHING)
        if snapshot.status is JobStatus.SUCCEEDED:
            return load_manifest(cluster.store, job_id)
        if snapshot.status is JobStatus.FAILED:
            # The worker that failed it records this too, maybe a moment later:
            # a caller reading the manifest after this error must see it failed.
            reasons = snapshot.reasons() or "failed"
            mark_manifest(cluster.store, job_id, JobStatus.FAILED, reasons)
            raise JobError(f"job {job_id} failed: {reasons}", job_id=job_id)
        if snapshot.status is JobStatus.CANCELLED:
            raise JobError(f"job {job_id} was cancelled", job_id=job_id)
        rescue_job(cluster.store, cluster.state, cluster.producer, job_id, stall_after=stall_after)
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(
                f"job {job_id} still {snapshot.status} after {timeout:g} s"
                f" ({snapshot.done}/{snapshot.total} chunks): `ttsbatch status {job_id}`",
                job_id=job_id,
            )
        time.sleep(POLL_INTERVAL)
