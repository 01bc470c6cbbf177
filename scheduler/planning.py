"""Planning: documents and options become a job manifest in the store, then chunk tasks.

A job's id is derived from its inputs and options, so running the same command
again finds the same job and resumes it instead of starting over. The id needs
only each document's name and the SHA-256 of its bytes (:func:`job_id_of`), so
the API can name a job before anything is ingested. :func:`start_job` records a
planned job in Redis and sends the chunks the store does not hold yet.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from celery import Celery

from scheduler.dispatch import chunk_messages, dispatch_chunks, dispatch_finalize
from scheduler.ingest.anchoring import source_map
from scheduler.splitting import split
from ttsbatch import keys
from ttsbatch.billing import Billing
from ttsbatch.manifests import read_manifest, write_manifest
from ttsbatch.models import (
    Document,
    DocumentPlan,
    JobOptions,
    JobStatus,
    Manifest,
    SpendLimit,
)
from ttsbatch.state import JobSnapshot, JobState, mark_manifest
from ttsbatch.storage import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def job_id_for(documents: Sequence[Document], options: JobOptions) -> str:
    """Return a deterministic job id: the same inputs and options give the same id."""
    return job_id_of([(d.name, d.source_sha256) for d in documents], options)


def job_id_of(identities: Sequence[tuple[str, str]], options: JobOptions) -> str:
    """Return the id :func:`job_id_for` gives, from each document's name and input SHA-256."""
    digest = hashlib.sha256(options.model_dump_json().encode())
    for name, sha256 in identities:
        digest.update(f"\0{name}\0{sha256}".encode())
    return digest.hexdigest()[:20]


def doc_ids(documents: Sequence[Document]) -> list[str]:
    """Return key-safe, unique document ids (``book``, ``book-2``, …)."""
    return doc_ids_of([document.name for document in documents])


def doc_ids_of(names: Sequence[str]) -> list[str]:
    """Return the ids :func:`doc_ids` gives documents of these names."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for name in names:
        base = _UNSAFE.sub("_", name).strip("._") or "document"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def plan_job(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    job_id: str | None = None,
    cache_scope: str | None = None,
    account: str | None = None,
    limit: SpendLimit | None = None,
) -> Manifest:
    """Split every document and return the job's manifest (status ``queued``).

    ``cache_scope`` names the chunk cache the job's chunks are looked up in and
    kept in (:mod:`ttsbatch.cache`); ``None``: every chunk is synthesised.
    ``limit`` is what the job may send while it runs (its caps).
    """
    plans = tuple(
        DocumentPlan(
            doc=doc,
            name=document.name,
            source_name=document.source_name,
            source_sha256=document.source_sha256,
            chars=len(document.text),
            chapters=document.chapters,
            chunks=split(document.text, max_chars=options.max_chars, chapters=document.chapters),
            info=document.info,
            cover=f"cover.{document.cover.suffix}" if document.cover else None,
        )
        for doc, document in zip(doc_ids(documents), documents, strict=True)
    )
    return Manifest(
        job_id=job_id or job_id_for(documents, options),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        options=options,
        documents=plans,
        cache_scope=cache_scope,
        account=account,
        limit=limit,
    )


def write_plan(store: Store, manifest: Manifest, documents: Sequence[Document]) -> Manifest:
    """Store the job's source texts, covers and manifest; return the manifest in force.

    A document's cover is stored at its output suffix (``out/<doc>.cover.jpg``).

    If the store already holds a manifest for this job id (a rerun), that one is
    kept and returned, so that a resumed job keeps its plan and its status.
    """
    for plan, document in zip(manifest.documents, documents, strict=True):
        store.write(
            keys.output_key(manifest.job_id, plan.doc, "source.txt"), document.text.encode()
        )
        if plan.cover and document.cover:
            store.write(keys.output_key(manifest.job_id, plan.doc, plan.cover), document.cover.data)
        if manifest.options.read_along and document.epub is not None:
            _keep_epub(store, manifest.job_id, plan.doc, document.epub, document)
    if write_manifest(store, manifest, if_absent=True):
        return manifest
    return read_manifest(store, manifest.job_id)


def _keep_epub(store: Store, job_id: str, doc: str, epub: bytes, document: Document) -> None:
    """Keep an EPUB input for its read-along book: its bytes, and where its text lies in it."""
    mapped = source_map(epub, document.text, document.source_name)
    store.write(keys.readalong_source_key(job_id, doc), epub)
    store.write(keys.readalong_map_key(job_id, doc), mapped.model_dump_json(by_alias=True).encode())


def plan_into(
    store: Store,
    documents: Sequence[Document],
    options: JobOptions,
    *,
    job_id: str | None = None,
    cache_scope: str | None = None,
    account: str | None = None,
    limit: SpendLimit | None = None,
) -> tuple[Manifest, dict[str, str], bool]:
    """Plan a job into the store; return the manifest in force, the texts by document id,
    and whether the plan is new (no manifest was stored for the job id before).

    A manifest already stored for the job id is kept (:func:`write_plan`).
    """
    planned = plan_job(
        documents, options, job_id=job_id, cache_scope=cache_scope, account=account, limit=limit
    )
    manifest = write_plan(store, planned, documents)
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    return manifest, texts, manifest is planned


def start_job(
    store: Store,
    state: JobState,
    producer: Celery,
    manifest: Manifest,
    texts: Mapping[str, str] | None = None,
    *,
    keep_chunks: bool = False,
    fresh: bool = False,
) -> JobSnapshot:
    """Record a planned job in Redis from the store and send the chunks it misses.

    A failed or cancelled job runs again, re-running only what is missing.
    ``texts`` are the documents' texts by doc id; without them the source
    texts stored beside the plan are read. A ``fresh`` job, planned just
    now, can have no chunk stored yet: the store is not listed for them.
    """
    job_id = manifest.job_id
    texts = texts if texts is not None else stored_texts(store, manifest)
    if manifest.status in {JobStatus.FAILED, JobStatus.CANCELLED}:
        # Retrying a failed or cancelled job re-runs only what is missing.
        mark_manifest(store, job_id, JobStatus.RUNNING, None)
    if fresh:
        snapshot = state.init(manifest, keep_chunks=keep_chunks)
        Billing.of(state).forget(job_id)  # a job id used before (purged, sent again) starts anew
        done: set[str] = set()
    else:
        snapshot = state.rebuild_from_store(store, manifest, keep_chunks=keep_chunks)
        done = state.done_chunks(job_id)
    sent = dispatch_chunks(producer, chunk_messages(manifest, texts, skip=done))
    if sent == 0 and state.claim_finalize(job_id, f"dispatch-{uuid.uuid4().hex}").last:
        dispatch_finalize(producer, job_id, keep_chunks=keep_chunks)
    return snapshot


def stored_texts(store: Store, manifest: Manifest) -> dict[str, str]:
    """Return each document's text as stored beside the plan, by document id."""
    return {
        plan.doc: store.read(keys.output_key(manifest.job_id, plan.doc, "source.txt")).decode()
        for plan in manifest.documents
    }
