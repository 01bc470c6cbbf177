"""A job's manifest in the store: the one place it is read, written and parsed.

The manifest (``jobs/<id>/manifest.json``, :class:`~ttsbatch.models.Manifest`)
is the job's authoritative record: its request, chunk plan, status and
outputs. Everything that reads or writes one goes through these functions,
so its key, its serialisation and what a missing one means live here.
"""

from __future__ import annotations

from ttsbatch import keys
from ttsbatch.errors import ObjectNotFoundError
from ttsbatch.models import Cover, DocumentPlan, Manifest
from ttsbatch.storage import Store


def read_manifest(store: Store, job_id: str) -> Manifest:
    """Return the stored manifest of ``job_id``.

    Raises:
        ObjectNotFoundError: the store holds no manifest for the job.
        StorageError: the store failed to read it.
        ValueError: the stored manifest is not a valid one.
    """
    return Manifest.model_validate_json(store.read(keys.manifest_key(job_id)))


def find_manifest(store: Store, job_id: str) -> Manifest | None:
    """Return the stored manifest of ``job_id``, or None if the store holds none."""
    try:
        return read_manifest(store, job_id)
    except ObjectNotFoundError:
        return None


def write_manifest(store: Store, manifest: Manifest, *, if_absent: bool = False) -> bool:
    """Store ``manifest`` (with ``if_absent``, only if none is there); return whether it was."""
    data = manifest.model_dump_json(by_alias=True, indent=1).encode()
    return store.write(keys.manifest_key(manifest.job_id), data, if_absent=if_absent)


def read_cover(store: Store, job_id: str, plan: DocumentPlan) -> Cover | None:
    """Return the cover stored beside a document at planning, if it has one."""
    if not plan.cover:
        return None
    return Cover.sniff(store.read(keys.output_key(job_id, plan.doc, plan.cover)))
