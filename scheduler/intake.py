"""Accepting a job cheaply: its input stored and its planning queued as a task.

A request to run a job does only what must happen before it is answered:
checks that need no parsing (an empty input; limits and formats are the
API's), the job's record with its input (:mod:`scheduler.records`: one
write for a small input), ``queued`` in Redis, and a :data:`PLAN_JOB`
message. ``ttsbatch beat`` consumes it (:func:`register_plan_task`), and
:func:`plan_accepted` does the rest: ingest, split, manifest, chunk tasks
(:mod:`scheduler.planning`). An input that cannot be read fails the job with
the message ingestion gives, the one the request itself used to answer.

A job id needs only each document's name and the SHA-256 of its bytes
(:func:`scheduler.planning.job_id_of`), so a job accepted this way has the
id it would have had if it had been ingested first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Final, Literal

from celery import Celery, Task
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from scheduler.costing import estimate, over_budget, preview
from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_bytes, ingest_text
from scheduler.planning import plan_into, plan_job, start_job
from scheduler.records import (
    JobInput,
    JobRecord,
    input_key,
    read_job_record,
    write_job_record,
)
from ttsbatch import keys
from ttsbatch.billing import Billing
from ttsbatch.cache import ChunkCache
from ttsbatch.errors import InputError, TtsBatchError
from ttsbatch.keys import RedisKeys
from ttsbatch.manifests import find_manifest
from ttsbatch.models import Cover, Document, JobStatus, Manifest, SpendLimit
from ttsbatch.redisclient import outage
from ttsbatch.settings import Settings
from ttsbatch.state import CANCELLED_BY_USER, JobState, mark_manifest
from ttsbatch.storage import Store, open_store

log = logging.getLogger(__name__)

PLAN_JOB: Final = "ttsbatch.plan_job"
#: The queue of :data:`PLAN_JOB`, consumed by ``ttsbatch beat``.
PLAN_QUEUE: Final = "ttsbatch.plan"
#: Bytes of text kept inside a job's record rather than as objects of their own.
INLINE_LIMIT: Final = 64 * 1024
#: Seconds a planner's claim on a job outlives a planner that died holding it.
PLAN_CLAIM_TTL: Final = 120
#: Seconds before a planning message that found its job claimed is tried again.
BUSY_RETRY: Final = 5.0


class PlanningBusyError(TtsBatchError):
    """Raised when another planner holds a job's claim: try again once it let go or expired."""


def empty_message(name: str) -> str:
    """What ingestion says of an input with nothing to speak."""
    return f"{name}: the file is empty: nothing to speak"


def too_many_characters(chars: int, limit: int) -> str:
    """What a job over the characters limit is told (at once, or when planned)."""
    return (
        f"{chars} characters in one job; the limit is {limit}:"
        " split the text over several jobs or use /v1/runs"
    )


@dataclass(frozen=True, slots=True)
class Given:
    """One document of a job as a request sent it, not read yet.

    Attributes:
        kind: ``text`` (inline text) or ``file`` (an upload or an object's bytes).
        name: the document's name (text) or the file's name (file).
        data: its bytes (text: UTF-8).
        sha256: their SHA-256, as ingestion records it.
    """

    kind: Literal["text", "file"]
    name: str
    data: bytes
    sha256: str

    @classmethod
    def text(cls, text: str, name: str) -> Given:
        """Inline text named ``name``.

        Raises:
            InputError: it is empty or only whitespace.
        """
        if not text.strip():
            raise InputError(empty_message(name))
        data = text.encode("utf-8", "surrogatepass")
        return cls("text", name, data, hashlib.sha256(data).hexdigest())

    @classmethod
    def file(cls, filename: str, data: bytes) -> Given:
        """A file's bytes; its name says its format, its stem names the document.

        Raises:
            InputError: it is empty or only whitespace.
        """
        given = cls("file", filename, data, hashlib.sha256(data).hexdigest())
        if not data.strip():
            raise InputError(empty_message(given.source_name))
        return given

    def document(self) -> Document:
        """Ingest it (as planning would).

        Raises:
            InputError: in no supported format, or malformed.
        """
        if self.kind == "text":
            return ingest_text(self.data.decode("utf-8", "surrogatepass"), self.name)
        return ingest_bytes(self.data, self.name)

    @property
    def source_name(self) -> str:
        """The name ingestion gives the input: a file's name without any client path."""
        if self.kind == "text":
            return self.name
        return self.name.replace("\\", "/").rsplit("/", 1)[-1] or "document"

    @property
    def document_name(self) -> str:
        """The document's name: the text's, or the file's stem (``book`` of ``book.epub``)."""
        source = self.source_name
        return source if self.kind == "text" else (PurePath(source).stem or source)


def store_cover(store: Store, job_id: str, cover: Cover | None) -> str | None:
    """Keep a job's uploaded cover until it is planned; return its key (``None``: no cover)."""
    if cover is None:
        return None
    key = keys.job_cover_key(job_id, cover.suffix)
    store.write(key, cover.data)
    return key


def store_inputs(store: Store, job_id: str, given: Sequence[Given]) -> tuple[JobInput, ...]:
    """Store what the job's record cannot keep inline; return the record's inputs.

    Texts up to :data:`INLINE_LIMIT` bytes in all stay in the record (one write
    accepts the job); files and longer texts are objects of their own.
    """
    inputs = []
    budget = INLINE_LIMIT
    for index, item in enumerate(given):
        inline = None
        if item.kind == "text" and len(item.data) <= budget:
            with contextlib.suppress(UnicodeDecodeError):  # lone surrogates: not JSON text
                inline = item.data.decode()
        if inline is not None:
            budget -= len(item.data)
            inputs.append(JobInput(kind="text", name=item.name, sha256=item.sha256, text=inline))
            continue
        key = input_key(job_id, index)
        store.write(key, item.data)
        inputs.append(JobInput(kind=item.kind, name=item.name, sha256=item.sha256, key=key))
    return tuple(inputs)


def read_documents(store: Store, inputs: Sequence[JobInput], *, max_chars: int) -> list[Document]:
    """Ingest a job's stored inputs.

    Raises:
        InputError: an input is empty, in no supported format, or malformed;
            or all of them hold more than ``max_chars`` characters.
    """
    documents = []
    for item in inputs:
        if item.text is not None:
            documents.append(ingest_text(item.text, item.name))
            continue
        data = store.read(str(item.key))
        if item.kind == "text":
            documents.append(ingest_text(data.decode("utf-8", "surrogatepass"), item.name))
        else:
            documents.append(ingest_bytes(data, item.name))
    chars = sum(len(document.text) for document in documents)
    if chars > max_chars:
        raise InputError(too_many_characters(chars, max_chars))
    return documents


def send_plan(producer: Celery, job_id: str, record: JobRecord | None = None) -> None:
    """Queue the planning of an accepted job; ``record``, as just stored, saves reading it.

    Raises:
        BrokerError: the broker cannot be reached (after kombu's own retries).
    """
    kwargs: dict[str, object] = {"job_id": job_id}
    if record is not None:
        kwargs["record"] = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        producer.send_task(PLAN_JOB, kwargs=kwargs, queue=PLAN_QUEUE)
    except OperationalError as exc:
        raise outage(exc, maybe_sanitize_url(producer.conf.broker_url)) from exc


def _over_caps(
    store: Store,
    state: JobState,
    record: JobRecord,
    documents: Sequence[Document],
    settings: Settings | None,
) -> str | None:
    """Why a job over its caps, or its tenant's month, must not start (with its estimate);
    ``None`` within them."""
    settings = settings or Settings()
    monthly = settings.api.monthly_cost_cap if record.account else 0.0
    capped = record.max_cost is not None or record.max_billed_chars is not None
    if record.options is None or not (capped or monthly):
        return None
    manifest = plan_job(documents, record.options)
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    cache = ChunkCache(store, record.cache_scope) if record.cache_scope else None
    found = estimate(manifest, texts, settings, cache)
    refusal = over_budget(found, max_cost=record.max_cost, max_billed_chars=record.max_billed_chars)
    if refusal is None and monthly and record.account:
        spent = Billing.of(state).spent(record.account)
        left = max(0.0, monthly - spent)
        refusal = over_budget(found, max_cost=left, max_billed_chars=None)
        if refusal is not None:
            refusal += f" left this month (${spent:.4f} of ${monthly:.4f} spent)"
    return refusal


def spend_limit(record: JobRecord, settings: Settings) -> SpendLimit | None:
    """What the job of ``record`` may send while it runs: its caps, its tenant's month."""
    if record.options is None:
        return None
    engine = record.options.engine
    return SpendLimit.of(
        max_cost=record.max_cost,
        max_billed_chars=record.max_billed_chars,
        price_per_million=settings.price_of(engine.engine, engine.model),
        account=record.account,
        monthly_cost_cap=settings.api.monthly_cost_cap,
    )


def fail_unplanned(store: Store, state: JobState, record: JobRecord, error: str) -> None:
    """Fail a job that cannot be planned: its record says why, and so does Redis.

    Redis gets a job of no chunks, failed, so that followers and webhooks
    read the reason as they read any failed job's.
    """
    write_job_record(store, record.model_copy(update={"status": JobStatus.FAILED, "error": error}))
    if record.options is not None:
        empty = Manifest(
            job_id=record.job_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            options=record.options,
            documents=(),
        )
        state.init(empty, status=JobStatus.FAILED)
    state.finish(record.job_id, JobStatus.FAILED, error=error)


def plan_accepted(
    store: Store,
    state: JobState,
    producer: Celery,
    job_id: str,
    *,
    max_chars: int,
    record: JobRecord | None = None,
    settings: Settings | None = None,
) -> JobStatus | None:
    """Plan an accepted job and send its chunks; return its status then (None: left alone).

    Idempotent: a job already started (a message delivered twice), ended, or
    cancelled before it was planned is left as it is. A job whose manifest
    exists (accepted again after it failed, or resumed) is started from it,
    or marked succeeded if it did. ``record`` is the job's record as it was
    accepted (read from the store without it). ``settings`` price a job with
    a cost cap (their table; the environment's without them).

    Raises:
        PlanningBusyError: another planner is planning the job now (a claim in
            Redis): try again in a moment, it will have started the job or died.
    """
    claim = RedisKeys(state.namespace).planning(job_id)
    if not state.client.set(claim, "1", nx=True, ex=PLAN_CLAIM_TTL):
        raise PlanningBusyError(f"job {job_id} is being planned by another planner")
    try:
        return _plan(
            store, state, producer, job_id, max_chars=max_chars, record=record, settings=settings
        )
    finally:
        state.client.delete(claim)


def _plan(  # noqa: PLR0911 - each return is one case of a job's life
    store: Store,
    state: JobState,
    producer: Celery,
    job_id: str,
    *,
    max_chars: int,
    record: JobRecord | None,
    settings: Settings | None = None,
) -> JobStatus | None:
    status = state.status(job_id)
    if status not in {None, JobStatus.QUEUED}:
        return None
    record = record or read_job_record(store, job_id)
    if record is None or record.options is None:
        return None
    accepted = status is JobStatus.QUEUED and record.status is JobStatus.QUEUED
    # Accepted just now: no need to look for a manifest first (write_plan keeps one).
    manifest = None if accepted and record.inputs else find_manifest(store, job_id)
    if manifest is None:
        if record.status is not JobStatus.QUEUED or not record.inputs:
            return None  # cancelled or failed before it was planned
        try:
            documents = read_documents(store, record.inputs, max_chars=max_chars)
        except InputError as exc:
            fail_unplanned(store, state, record, str(exc))
            return JobStatus.FAILED
        if record.cover is not None:  # the job's uploaded cover, over each document's own
            cover = Cover.sniff(store.read(record.cover))
            documents = [document.model_copy(update={"cover": cover}) for document in documents]
        if record.preview_seconds is not None:
            documents = preview(documents, record.options, record.preview_seconds)
        refusal = _over_caps(store, state, record, documents, settings)
        if refusal is not None:
            fail_unplanned(store, state, record, refusal)
            return JobStatus.FAILED
        manifest, texts, fresh = plan_into(
            store,
            documents,
            record.options,
            job_id=job_id,
            cache_scope=record.cache_scope,
            account=record.account,
            limit=spend_limit(record, settings or Settings()),
        )
    elif status is None and manifest.status in {JobStatus.FAILED, JobStatus.CANCELLED}:
        return None  # a stale message of a job that ended: only a retry restarts it
    else:
        texts, fresh = None, False
    if manifest.status is JobStatus.SUCCEEDED:
        state.finish(job_id, JobStatus.SUCCEEDED)
        return JobStatus.SUCCEEDED
    if state.status(job_id) is JobStatus.CANCELLED:  # cancelled while it was being planned
        mark_manifest(store, job_id, JobStatus.CANCELLED, CANCELLED_BY_USER)
        return JobStatus.CANCELLED
    return start_job(store, state, producer, manifest, texts, fresh=fresh).status


@dataclass(frozen=True, slots=True)
class Planner:
    """Plans accepted jobs: the connections :func:`plan_accepted` needs."""

    store: Store
    state: JobState
    producer: Celery
    max_chars: int
    settings: Settings | None = None  # its price table prices jobs with a cost cap

    @classmethod
    def connect(cls, settings: Settings) -> Planner:
        """Open (lazily) the store, Redis and a producer named by ``settings``."""
        return cls(
            store=open_store(settings.store),
            state=JobState.from_url(settings.redis_url),
            producer=create_producer(settings),
            max_chars=settings.api.max_chars_per_job,
            settings=settings,
        )

    def __call__(self, job_id: str, record: JobRecord | None = None) -> JobStatus | None:
        """Plan ``job_id`` (:func:`plan_accepted`)."""
        return plan_accepted(
            self.store,
            self.state,
            self.producer,
            job_id,
            max_chars=self.max_chars,
            record=record,
            settings=self.settings,
        )


def register_plan_task(app: Celery, planner: Callable[[], Planner]) -> None:
    """Register :data:`PLAN_JOB` in ``app`` (the beat's); ``planner`` is called once per task.

    Acknowledged late: a beat killed while planning leaves the message to the
    next one, and planning twice is harmless (:func:`plan_accepted`).
    """

    # Not shared: a shared task is copied into every Celery app the process creates.
    @app.task(name=PLAN_JOB, bind=True, shared=False, acks_late=True, max_retries=None)
    def plan_job(
        self: Task[Any, Any], job_id: str, record: dict[str, Any] | None = None
    ) -> str | None:
        accepted = None if record is None else JobRecord.model_validate(record)
        try:
            status = planner()(job_id, accepted)
        except PlanningBusyError:
            raise self.retry(countdown=BUSY_RETRY) from None
        log.info("job %s planned: %s", job_id, status or "left alone")
        return None if status is None else status.value


def lazy(connect: Callable[[], Planner]) -> Callable[[], Planner]:
    """Return ``connect``'s planner, made once, by whichever pool thread asks first."""
    made: list[Planner] = []
    lock = threading.Lock()

    def planner() -> Planner:
        with lock:
            if not made:
                made.append(connect())
            return made[0]

    return planner
