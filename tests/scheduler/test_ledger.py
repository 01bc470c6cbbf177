"""The content-hash ledger: what a schedule's next run must synthesise."""

from __future__ import annotations

from scheduler.ledger import Ledger, content_hash
from ttsbatch.models import JobStatus
from ttsbatch.storage.local import LocalStore


def test_new_and_changed_documents_are_pending_and_unchanged_ones_are_not() -> None:
    ledger = Ledger()
    ledger.record(
        "r1", {"a": (content_hash(b"A"), "job-a"), "b": (content_hash(b"B"), "job-b")}, []
    )
    hashes = {"a": content_hash(b"A"), "b": content_hash(b"B2"), "c": content_hash(b"C")}
    assert ledger.pending(hashes, lambda job: JobStatus.SUCCEEDED) == ["b", "c"]


def test_a_document_whose_job_failed_or_vanished_is_pending_again() -> None:
    ledger = Ledger()
    ledger.record("r1", {"a": (content_hash(b"A"), "job-a")}, [])
    hashes = {"a": content_hash(b"A")}
    assert ledger.pending(hashes, lambda job: JobStatus.RUNNING) == []
    assert ledger.pending(hashes, lambda job: JobStatus.FAILED) == ["a"]
    assert ledger.pending(hashes, lambda job: None) == ["a"]


def test_a_ledger_round_trips_through_the_store_with_its_history(local_store: LocalStore) -> None:
    ledger = Ledger.load(local_store, "s1")
    assert ledger.documents == {} and ledger.runs == []
    ledger.record("r1", {"a": (content_hash(b"A"), "job-a")}, ["b"])
    ledger.save(local_store, "s1")
    again = Ledger.load(local_store, "s1")
    assert again.documents == {"a": {"sha256": content_hash(b"A"), "job_id": "job-a"}}
    assert again.runs[0]["run_id"] == "r1" and again.runs[0]["skipped"] == ["b"]
