"""Dispatch: a planned job's chunks become Celery messages, sent by task name.

The scheduler never imports the worker package (import-linter enforces it):
it builds its own producer app on the same broker and sends the task names and
message models of :mod:`ttsbatch.messages`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping

from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from ttsbatch.messages import (
    FINALIZE_JOB,
    FINALIZE_QUEUE,
    SYNTHESIZE_CHUNK,
    ChunkMessage,
    FinalizeMessage,
    chunk_id,
    encode,
    queue_for,
)
from ttsbatch.models import Manifest
from ttsbatch.redisclient import outage
from ttsbatch.settings import Settings


def create_producer(settings: Settings, *, name: str = "ttsbatch-scheduler") -> Celery:
    """Return a Celery app that only sends (no tasks registered, no results).

    Other scheduler apps (the beat) start from it, so that they speak to the
    broker as the producer does.
    """
    app = Celery(name, set_as_current=False)
    app.conf.update(
        broker_url=settings.redis_url,
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def chunk_messages(
    manifest: Manifest, texts: Mapping[str, str], *, skip: Collection[str] = ()
) -> Iterator[ChunkMessage]:
    """Yield a message per planned chunk whose id is not in ``skip``.

    Args:
        texts: each document's full text, by document id (``DocumentPlan.doc``).
        skip: ids (:func:`~ttsbatch.messages.chunk_id`) of chunks already stored.
    """
    for plan in manifest.documents:
        text = texts[plan.doc]
        for chunk in plan.chunks:
            if chunk_id(plan.doc, chunk.index) in skip:
                continue
            yield ChunkMessage(
                job_id=manifest.job_id,
                doc=plan.doc,
                index=chunk.index,
                text=text[chunk.char_start : chunk.char_end],
                engine=manifest.options.engine,
                cache_scope=manifest.cache_scope,
                limit=manifest.limit,
            )


def dispatch_chunks(app: Celery, messages: Iterable[ChunkMessage]) -> int:
    """Send every message to its engine's queue over one connection; return how many.

    Raises:
        BrokerError: the broker cannot be reached (after kombu's own retries).
    """
    sent = 0
    with _broker(app), app.producer_or_acquire() as producer:
        for message in messages:
            app.send_task(
                SYNTHESIZE_CHUNK,
                kwargs={"message": encode(message)},
                queue=queue_for(message.engine.engine),
                producer=producer,
            )
            sent += 1
    return sent


def dispatch_finalize(app: Celery, job_id: str, *, keep_chunks: bool = False) -> None:
    """Send the job's stitch (the caller has claimed it in the job state).

    Raises:
        BrokerError: the broker cannot be reached (after kombu's own retries).
    """
    message = FinalizeMessage(job_id=job_id, keep_chunks=keep_chunks)
    with _broker(app):
        app.send_task(FINALIZE_JOB, kwargs={"message": encode(message)}, queue=FINALIZE_QUEUE)


@contextlib.contextmanager
def _broker(app: Celery) -> Iterator[None]:
    """Translate kombu's failure to reach the broker into a BrokerError."""
    try:
        yield
    except OperationalError as exc:
        raise outage(exc, maybe_sanitize_url(app.conf.broker_url)) from exc
