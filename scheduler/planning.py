"""Planning: documents and options become a job manifest in the store.

A job's id is derived from its inputs and options, so running the same command
again finds the same job and resumes it instead of starting over.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from scheduler.splitting import split
from ttsbatch import keys
from ttsbatch.models import Document, DocumentPlan, JobOptions, Manifest
from ttsbatch.storage import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def job_id_for(documents: Sequence[Document], options: JobOptions) -> str:
    """Return a deterministic job id: the same inputs and options give the same id."""
    digest = hashlib.sha256(options.model_dump_json().encode())
    for document in documents:
        digest.update(f"\0{document.name}\0{document.source_sha256}".encode())
    return digest.hexdigest()[:20]


def doc_ids(documents: Sequence[Document]) -> list[str]:
    """Return key-safe, unique document ids (``book``, ``book-2``, …)."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for document in documents:
        base = _UNSAFE.sub("_", document.name).strip("._") or "document"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def plan_job(
    documents: Sequence[Document], options: JobOptions, *, job_id: str | None = None
) -> Manifest:
    """Split every document and return the job's manifest (status ``queued``)."""
    plans = tuple(
        DocumentPlan(
            doc=doc,
            name=document.name,
            source_name=document.source_name,
            source_sha256=document.source_sha256,
            chars=len(document.text),
            chapters=document.chapters,
            chunks=split(document.text, max_chars=options.max_chars, chapters=document.chapters),
        )
        for doc, document in zip(doc_ids(documents), documents, strict=True)
    )
    return Manifest(
        job_id=job_id or job_id_for(documents, options),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        options=options,
        documents=plans,
    )


def write_plan(store: Store, manifest: Manifest, documents: Sequence[Document]) -> Manifest:
    """Store the job's source texts and manifest; return the manifest in force.

    If the store already holds a manifest for this job id (a rerun), that one is
    kept and returned, so that a resumed job keeps its plan and its status.
    """
    for plan, document in zip(manifest.documents, documents, strict=True):
        store.write(
            keys.output_key(manifest.job_id, plan.doc, "source.txt"), document.text.encode()
        )
    key = keys.manifest_key(manifest.job_id)
    if store.write(key, manifest.model_dump_json(by_alias=True, indent=1).encode(), if_absent=True):
        return manifest
    return Manifest.model_validate_json(store.read(key))
