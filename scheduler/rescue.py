"""Rescue: send again what a running job waits for and no live worker holds.

Two looks at a job, in this order (:mod:`ttsbatch.state.leases` explains the
leases):

1. chunks whose lease ran out without being stored — their worker died, their
   message was lost between the broker's pop and its unacknowledged record, or
   the retry a dead worker held ran out — are claimed (each by one rescuer) and
   sent again: a dead worker costs about one lease lifetime;
2. the fallback for what leases do not cover: a running job that stored no
   chunk and held no live lease for :data:`STALL_AFTER` seconds (doubled after
   each time) gets every missing chunk without a live lease sent again; a
   stitching job whose finalize never started, its finalize.

Chunks are idempotent (a stored record is never synthesised again), so a spare
copy costs at most a message. Each re-sent message carries the task id its
chunk's place in the job's queue order was given, so that its start may pass
the chunks queued before it. Whoever looks — a follower (``synth
--distributed``, ``resume``) at its own job, the beat over every active job —
Redis's clock decides and atomic claims keep each rescue to one rescuer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from scheduler.dispatch import chunk_messages, dispatch_finalize
from ttsbatch import keys
from ttsbatch.manifests import read_manifest
from ttsbatch.messages import SYNTHESIZE_CHUNK, ChunkMessage, chunk_id, encode, queue_for
from ttsbatch.models import Manifest
from ttsbatch.redisclient import outage
from ttsbatch.state import JobState, Rescue
from ttsbatch.storage import Store

log = logging.getLogger(__name__)

#: Seconds without a stored chunk or a live lease after which a running job's
#: missing chunks are all sent again (the fallback; doubled after each time).
STALL_AFTER: Final = 120.0


def rescue_job(
    store: Store, state: JobState, producer: Celery, job_id: str, *, stall_after: float
) -> Rescue | None:
    """Send again what one job waits for; return what was sent (None: nothing).

    Raises:
        StorageError: the job's manifest or texts could not be read.
        BrokerError: Redis cannot be reached.
    """
    expired = state.leases.claim_expired(job_id)
    if expired:
        sent = resend_chunks(store, producer, read_manifest(store, job_id), expired)
        log.info(
            "job %s: %d chunk(s) sent again, their lease ran out: %s", job_id, sent, _few(expired)
        )
        return Rescue.LEASES
    what = state.claim_rescue(job_id, stall_after)
    if what is Rescue.CHUNKS:
        manifest = read_manifest(store, job_id)
        missing = _planned(manifest) - state.done_chunks(job_id)
        claimed = state.leases.claim_missing(job_id, missing)
        sent = resend_chunks(store, producer, manifest, claimed)
        log.warning(
            "job %s: stored nothing for %g s or more: %d missing chunk(s) sent again",
            job_id,
            stall_after,
            sent,
        )
    elif what is Rescue.FINALIZE:
        dispatch_finalize(producer, job_id)
        log.warning("job %s: its finalize never started: sent again", job_id)
    return what


def rescue_active(
    store: Store, state: JobState, producer: Celery, *, stall_after: float = STALL_AFTER
) -> dict[str, Rescue]:
    """Look at every active job (:func:`rescue_job`); ended or vanished jobs leave the list.

    Returns:
        What was sent again, by job id.
    """
    rescued: dict[str, Rescue] = {}
    for job_id in state.active_jobs():
        if state.forget_if_ended(job_id):
            continue
        what = rescue_job(store, state, producer, job_id, stall_after=stall_after)
        if what is not None:
            rescued[job_id] = what
    return rescued


def resend_chunks(
    store: Store, producer: Celery, manifest: Manifest, claimed: Mapping[str, str]
) -> int:
    """Send claimed chunks again, each with the task id it was given; return how many.

    Args:
        claimed: chunk id -> the task id of its new message (from the claim).
    """
    if not claimed:
        return 0
    texts = {
        plan.doc: store.read(keys.output_key(manifest.job_id, plan.doc, "source.txt")).decode()
        for plan in manifest.documents
    }
    skip = _planned(manifest) - set(claimed)
    return _send(producer, chunk_messages(manifest, texts, skip=skip), claimed)


def _send(producer: Celery, messages: Iterable[ChunkMessage], task_ids: Mapping[str, str]) -> int:
    """:func:`scheduler.dispatch.dispatch_chunks`, with the task ids the claims chose."""
    sent = 0
    try:
        with producer.producer_or_acquire() as connection:
            for message in messages:
                producer.send_task(
                    SYNTHESIZE_CHUNK,
                    kwargs={"message": encode(message)},
                    queue=queue_for(message.engine.engine),
                    task_id=task_ids[message.chunk_id],
                    producer=connection,
                )
                sent += 1
    except OperationalError as exc:
        raise outage(exc, maybe_sanitize_url(producer.conf.broker_url)) from exc
    return sent


def _planned(manifest: Manifest) -> set[str]:
    return {chunk_id(plan.doc, chunk.index) for plan in manifest.documents for chunk in plan.chunks}


def _few(chunks: Iterable[str], most: int = 5) -> str:
    names = sorted(chunks)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
