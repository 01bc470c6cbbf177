"""The content-hash ledger of a schedule, kept in the store: what each run synthesised.

``schedules/<id>/ledger.json`` maps each source document (its key) to the
SHA-256 of the content last submitted and the job that speaks it, and lists
the schedule's runs. A document is synthesised again only when its content
changed, or when its last job failed or was cancelled (or vanished).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ttsbatch.errors import StorageError
from ttsbatch.models import JobStatus
from ttsbatch.storage import Store

LEDGER_SCHEMA: Final = "ttsbatch.ledger/1"
#: Runs kept in a schedule's history.
HISTORY: Final = 100


def ledger_key(schedule_id: str) -> str:
    """Return the store key of a schedule's ledger."""
    return f"schedules/{schedule_id}/ledger.json"


def content_hash(data: bytes) -> str:
    """Return the SHA-256 of a document's bytes."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Ledger:
    """Per document: the content hash and job of its last submission; the run history."""

    documents: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store, schedule_id: str) -> Ledger:
        """Read a schedule's ledger; an empty one if there is none yet."""
        key = ledger_key(schedule_id)
        try:
            if not store.exists(key):
                return cls()
            raw = json.loads(store.read(key))
        except (StorageError, ValueError):
            return cls()
        return cls(documents=dict(raw.get("documents", {})), runs=list(raw.get("runs", [])))

    def save(self, store: Store, schedule_id: str) -> None:
        """Write the ledger back."""
        body = {"schema": LEDGER_SCHEMA, "documents": self.documents, "runs": self.runs[-HISTORY:]}
        store.write(ledger_key(schedule_id), json.dumps(body, sort_keys=True, indent=1).encode())

    def pending(
        self, hashes: Mapping[str, str], status: Callable[[str], JobStatus | None]
    ) -> list[str]:
        """Return the documents to synthesise: new, changed, or whose last job did not succeed.

        Args:
            hashes: each current document's content hash, by key.
            status: a job's status (None: unknown), to redo failed jobs.
        """
        todo = []
        for name, digest in sorted(hashes.items()):
            entry = self.documents.get(name)
            if entry is None or entry.get("sha256") != digest:
                todo.append(name)
                continue
            if status(entry.get("job_id", "")) in {JobStatus.FAILED, JobStatus.CANCELLED, None}:
                todo.append(name)
        return todo

    def record(
        self, run_id: str, submitted: Mapping[str, tuple[str, str]], skipped: list[str]
    ) -> None:
        """Record a run: ``submitted`` maps each document to (content hash, job id)."""
        for name, (digest, job_id) in submitted.items():
            self.documents[name] = {"sha256": digest, "job_id": job_id}
        self.runs.append(
            {
                "run_id": run_id,
                "at": time.time(),
                "synthesised": sorted(submitted),
                "skipped": skipped,
            }
        )
