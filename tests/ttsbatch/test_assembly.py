"""The local executor's in-order assembly: same bytes as finalize, and resumable."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import pytest

from scheduler.ingest import ingest_text
from scheduler.planning import plan_job, write_plan
from ttsbatch import keys
from ttsbatch.errors import JobError
from ttsbatch.executors.assembly import AUDIO, JOURNAL, Assembly, open_assembly
from ttsbatch.executors.local import _only_run, run_local
from ttsbatch.executors.slots import SLOT_BYTES, Slots
from ttsbatch.models import (
    ChunkRecord,
    DocumentPlan,
    EngineSpec,
    JobOptions,
    Manifest,
    TimingSource,
    WordTiming,
)
from ttsbatch.settings import Settings
from ttsbatch.storage.local import LocalStore
from worker.finalize import finalize_job

TEXT = "\n\n".join(
    f"Chapter {n}\n\nThe keeper climbed the stair at dusk. He lit the lamp, and it burned."
    for n in range(1, 6)
)
OUTPUTS = ("audio", "timestamps", "srt", "vtt", "source")


def job(store: LocalStore) -> tuple[Manifest, DocumentPlan, str]:
    document = ingest_text(TEXT, name="book")
    options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=60)
    manifest = write_plan(store, plan_job([document], options), [document])
    return manifest, manifest.documents[0], document.text


def chunk(plan: DocumentPlan, text: str, n: int, rate: int = 1000) -> tuple[ChunkRecord, bytes]:
    """A made-up chunk: a word per text word, 40 samples each, PCM that tells chunks apart."""
    span = plan.chunks[n]
    words = [
        WordTiming(
            text=m.group(), char_start=m.start(), char_end=m.end(), start=40 * i, end=40 * i + 30
        )
        for i, m in enumerate(re.finditer(r"\w+", text[span.char_start : span.char_end]))
    ]
    samples = 40 * len(words) + 17
    pcm = bytes([n % 251 + 1, 0]) * samples
    record = ChunkRecord(
        index=span.index,
        sample_rate=rate,
        samples=samples,
        pcm_sha256=hashlib.sha256(pcm).hexdigest(),
        timing=TimingSource.PROVIDER,
        words=tuple(words),
        engine="test",
    )
    return record, pcm


def assembled(store: LocalStore, stop_after: int | None = None) -> Assembly:
    manifest, plan, text = job(store)
    assembly = open_assembly(store, manifest, plan, text)
    for n in range(assembly.done, len(plan.chunks) if stop_after is None else stop_after):
        assembly.add(*chunk(plan, text, n))
    return assembly


def outputs(store: LocalStore, keys_: dict[str, str]) -> dict[str, bytes]:
    return {kind: store.read(keys_[kind]) for kind in OUTPUTS}


def test_assembled_outputs_are_byte_identical_to_finalize_over_stored_chunks(
    tmp_path: Path,
) -> None:
    local = LocalStore(tmp_path / "local")
    got = outputs(local, assembled(local).finish())

    stored = LocalStore(tmp_path / "stored")
    manifest, plan, text = job(stored)
    for n, span in enumerate(plan.chunks):
        record, pcm = chunk(plan, text, n)
        stored.write(keys.chunk_pcm_key(manifest.job_id, plan.doc, span.index), pcm)
        stored.write(
            keys.chunk_json_key(manifest.job_id, plan.doc, span.index),
            record.model_dump_json(by_alias=True).encode(),
        )
    done = finalize_job(stored, manifest)
    assert got == outputs(stored, done.outputs[plan.doc])


def test_a_reopened_assembly_resumes_after_its_journal_and_drops_what_it_cannot_vouch_for(
    tmp_path: Path,
) -> None:
    whole = LocalStore(tmp_path / "whole")
    expected = outputs(whole, assembled(whole).finish())

    store = LocalStore(tmp_path / "cut")
    first = assembled(store, stop_after=3)
    first.close()
    manifest, plan, _ = job(store)
    # A kill -9 can leave audio written past the last journal line, and a line half written.
    with store.path(keys.assembly_key(manifest.job_id, plan.doc, AUDIO)).open("ab") as audio:
        audio.write(b"\x55" * 1001)
    with store.path(keys.assembly_key(manifest.job_id, plan.doc, JOURNAL)).open("ab") as journal:
        journal.write(b'{"schema":"ttsbatch.chunk/1","ind')
    resumed = assembled(store)
    assert resumed.done == len(plan.chunks)
    assert outputs(store, resumed.finish()) == expected


def test_audio_shorter_than_its_journal_starts_the_document_over(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assembled(store, stop_after=3).close()
    manifest, plan, text = job(store)
    audio = store.path(keys.assembly_key(manifest.job_id, plan.doc, AUDIO))
    audio.write_bytes(audio.read_bytes()[:100])
    reopened = open_assembly(store, manifest, plan, text)
    assert reopened.done == 0
    reopened.close()


def test_pcm_that_disagrees_with_its_record_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest, plan, text = job(store)
    assembly = open_assembly(store, manifest, plan, text)
    record, pcm = chunk(plan, text, 0)
    with pytest.raises(JobError, match=r"chunk 0 has \d+ bytes of audio, its record says"):
        assembly.add(record, pcm[:-2])
    assembly.add(record, pcm)
    other_rate, pcm = chunk(plan, text, 1, rate=2000)
    with pytest.raises(JobError, match="different sample rates"):
        assembly.add(other_rate, pcm)
    assembly.close()


def test_without_shared_memory_chunks_come_back_through_the_pipe_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = ingest_text(TEXT, name="book")
    options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=60)

    def run(root: Path) -> dict[str, bytes]:
        store = LocalStore(root)
        manifest = run_local([document], options, store=store, settings=Settings(), jobs=2)
        return outputs(store, manifest.outputs[manifest.documents[0].doc])

    shared = run(tmp_path / "shared")
    monkeypatch.setattr("ttsbatch.executors.local._shared_slots", lambda _path, _count: None)
    assert run(tmp_path / "piped") == shared


def test_reopening_a_finished_assembly_leaves_its_published_outputs_alone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    published = assembled(store).finish()  # a kill now: before the files are discarded
    expected = outputs(store, published)
    manifest, plan, text = job(store)
    reopened = open_assembly(store, manifest, plan, text)
    assert reopened.done == len(plan.chunks)
    assert outputs(store, published) == expected
    assert outputs(store, reopened.finish()) == expected


def test_a_second_run_of_the_same_job_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    document = ingest_text(TEXT, name="book")
    options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=60)
    manifest = write_plan(store, plan_job([document], options), [document])
    with _only_run(store, manifest.job_id), pytest.raises(JobError, match="already running"):
        run_local([document], options, store=store, settings=Settings(), jobs=1)


def test_a_full_disk_means_no_slots_file_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    assert Slots.create(tmp_path / "slots", 4) is None
    assert not (tmp_path / "slots").exists()


def test_a_slot_lends_what_was_put_in_it_and_refuses_what_does_not_fit(tmp_path: Path) -> None:
    slots = Slots.create(tmp_path / "slots", 2)
    assert slots is not None
    assert slots.put(1, b"abc")
    assert not slots.put(0, bytes(SLOT_BYTES + 1))
    with slots.view(1, 3) as view:
        assert bytes(view) == b"abc"
    slots.close()
