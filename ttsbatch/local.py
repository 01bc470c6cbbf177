"""The local executor: a whole job in one process pool, on one machine.

The same ingest → split → synthesise → stitch functions as the distributed
system; only the executor (a process pool) and the store (a local folder)
differ. Each pool process holds one engine (espeak-ng is not thread-safe).
Retries of a chunk happen here, in the task layer, and nowhere else.

Chunks are not stored one by one: each is handed back to this process and
added, in plan order, to its document's :class:`~ttsbatch.assembly.Assembly`,
so the audio is written once. Pool processes put a chunk's PCM in a slot of
shared memory rather than send it through the pool's pipe: on the benchmark
VM, moving 1.8 GB of a book through pipes cost as much as writing it twice.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory

from scheduler.planning import plan_job, write_plan
from ttsbatch.assembly import Assembly, discard, journaled, open_assembly
from ttsbatch.errors import EngineError, FatalEngineError, JobError, TtsBatchError
from ttsbatch.models import ChunkRecord, Document, DocumentPlan, JobOptions, JobStatus, Manifest
from ttsbatch.reporting import ChunkDone, Progress
from ttsbatch.settings import Settings
from ttsbatch.storage.local import LocalStore
from worker.engines import Engine
from worker.engines.factory import create_engine
from worker.finalize import write_succeeded
from worker.retrying import RetryPolicy
from worker.stitching import SAMPLE_WIDTH
from worker.synthesis import synthesize_record

#: A slot holds one chunk's PCM: 2 MiB is 45 s at 22 kHz, far above a chunk's
#: length. A longer chunk travels through the pipe instead.
SLOT_BYTES = 2 * 1024 * 1024
#: Slots are one per chunk in flight, at most this many (48 MiB: Docker's
#: default /dev/shm is 64 MiB).
MAX_SLOTS = 24

_engine: Engine | None = None
_slots: SharedMemory | None = None


@dataclass(frozen=True, slots=True)
class _Synthesized:
    """A chunk back from a pool process; its PCM is in slot ``slot`` when ``pcm`` is None."""

    done: ChunkDone
    record: ChunkRecord
    pcm: bytes | None


def _init_process(options: JobOptions, settings: Settings, slots: str | None) -> None:
    """Pool initializer: one engine per process, and the shared slots."""
    global _engine, _slots  # noqa: PLW0603 - per-process state is the point of an initializer
    # Ctrl-C goes to the parent, which stops the pool; children must not die mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine = create_engine(options.engine, settings)
    _slots = SharedMemory(name=slots) if slots else None


def _run_chunk(
    doc: str, index: int, text: str, policy: RetryPolicy, slot: int | None
) -> _Synthesized:
    """Synthesise one chunk in a pool process, retrying as the policy says."""
    assert _engine is not None, "pool process not initialised"  # noqa: S101
    attempt = 0
    while True:
        try:
            record, pcm = synthesize_record(_engine, index=index, text=text)
        except TtsBatchError as exc:
            attempt += 1
            delay = policy.delay(attempt, exc)
            if delay is None:
                if isinstance(exc, EngineError):
                    exc.chunk_index = index
                    exc.add_note(f"{doc} chunk {index}, after {attempt} attempt(s)")
                raise
            time.sleep(delay)
        else:
            done = ChunkDone(doc, index, len(text), record.samples / record.sample_rate, True)
            if _slots is not None and slot is not None and len(pcm) <= SLOT_BYTES:
                _buffer(_slots)[slot * SLOT_BYTES : slot * SLOT_BYTES + len(pcm)] = pcm
                return _Synthesized(done, record, None)
            return _Synthesized(done, record, pcm)


def run_local(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    store: LocalStore,
    settings: Settings,
    jobs: int,
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
    keep_chunks: bool = False,
) -> Manifest:
    """Run a job to completion on this machine and return its final manifest.

    Rerunning with the same documents and options resumes the job: chunks
    already assembled are not synthesised again.

    Args:
        keep_chunks: keep each document's journal of chunk records.

    Raises:
        JobError: a chunk failed permanently or ran out of retries.
        FatalEngineError: the provider refused every request (bad key, no credit).
    """
    progress = progress or Progress()
    manifest = write_plan(store, plan_job(documents, options), documents)
    total = sum(len(plan.chunks) for plan in manifest.documents)
    if manifest.status is JobStatus.SUCCEEDED:
        progress.start(manifest, total, total)
        return manifest
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    starts = {plan.doc: journaled(store, manifest, plan) for plan in manifest.documents}
    pending = [
        (plan.doc, chunk.index, texts[plan.doc][chunk.char_start : chunk.char_end])
        for plan in manifest.documents
        for chunk in plan.chunks[starts[plan.doc] :]
    ]
    progress.start(manifest, total - len(pending), total)
    assembler = _Assembler(store, manifest, texts, starts)
    try:
        _synthesize_all(
            pending,
            assembler,
            options=options,
            settings=settings,
            jobs=jobs,
            on_done=progress.advance,
            policy=policy or RetryPolicy(),
            job_id=manifest.job_id,
        )
        progress.stage(JobStatus.STITCHING)
        assembler.finish_rest()
    finally:
        assembler.close()
    done = write_succeeded(store, manifest, assembler.outputs)
    for plan in manifest.documents:
        discard(store, manifest.job_id, plan, keep_journal=keep_chunks)
    return done


class _Assembler:
    """Adds chunks to the documents' assemblies in plan order, one document open at a time."""

    def __init__(
        self,
        store: LocalStore,
        manifest: Manifest,
        texts: dict[str, str],
        starts: dict[str, int],
    ) -> None:
        self.store = store
        self.manifest = manifest
        self.texts = texts
        self.starts = starts
        self.plans: Iterator[DocumentPlan] = iter(manifest.documents)
        self.current: Assembly | None = None
        self.outputs: dict[str, dict[str, str]] = {}

    def add(self, doc: str, record: ChunkRecord, pcm: bytes | memoryview) -> None:
        """Add the next chunk of the job (documents in order, chunks in plan order)."""
        assembly = self._open_until(doc)
        assembly.add(record, pcm)

    def finish_rest(self) -> None:
        """Finish every document not finished yet (all their chunks are in)."""
        while self._next() is not None:
            pass

    def close(self) -> None:
        """Close the open document (what was added stays for a rerun)."""
        if self.current is not None:
            self.current.close()

    def _open_until(self, doc: str) -> Assembly:
        while self.current is None or self.current.plan.doc != doc:
            if self._next() is None:
                raise ValueError(f"document {doc} is not in the job")
        assert self.current is not None  # noqa: S101 - the loop leaves one open
        return self.current

    def _next(self) -> Assembly | None:
        """Finish the open document, then open the next; None after the last."""
        if self.current is not None:
            self.outputs[self.current.plan.doc] = self.current.finish()
            self.current = None
        plan = next(self.plans, None)
        if plan is None:
            return None
        self.current = open_assembly(self.store, self.manifest, plan, self.texts[plan.doc])
        if self.current.done != self.starts[plan.doc]:
            raise JobError(
                f"{plan.name}: its assembly changed while the job ran; run the same command again",
                job_id=self.manifest.job_id,
            )
        return self.current


def _synthesize_all(
    pending: Sequence[tuple[str, int, str]],
    assembler: _Assembler,
    *,
    options: JobOptions,
    settings: Settings,
    jobs: int,
    on_done: Callable[[ChunkDone], None],
    policy: RetryPolicy,
    job_id: str,
) -> None:
    """Synthesise ``pending`` in a pool and add each chunk to its assembly, in order."""
    if not pending:
        return
    # Keep a bounded window of chunks in flight or waiting for an earlier one,
    # so that memory stays flat and a cancel stops quickly.
    window = max(8, jobs * 4)
    slots = _shared_slots(min(window, MAX_SLOTS))
    free = list(range(len(_buffer(slots)) // SLOT_BYTES)) if slots else []
    # spawn: children must not inherit a parent's native engine state or threads.
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(pending))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_process,
        initargs=(options, settings, slots.name if slots else None),
    )
    running: dict[Future[_Synthesized], tuple[int, int | None]] = {}
    arrived: dict[int, tuple[_Synthesized, int | None]] = {}
    submitted = added = 0
    clean = False
    try:
        while added < len(pending):
            while submitted < len(pending) and len(running) + len(arrived) < window:
                doc, index, text = pending[submitted]
                slot = free.pop() if free else None
                running[pool.submit(_run_chunk, doc, index, text, policy, slot)] = (submitted, slot)
                submitted += 1
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                position, slot = running.pop(future)
                result = future.result()
                on_done(result.done)
                arrived[position] = (result, slot)
            while added in arrived:
                result, slot = arrived.pop(added)
                _add(assembler, result, slots, slot)
                if slot is not None:
                    free.append(slot)
                added += 1
        clean = True
    except FatalEngineError:
        raise
    except EngineError as exc:
        where = exc.__notes__[-1] if getattr(exc, "__notes__", None) else f"chunk {exc.chunk_index}"
        raise JobError(f"{where}: {exc}", job_id=job_id) from exc
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _stop(pool)
        if slots is not None:
            slots.close()
            slots.unlink()


def _add(
    assembler: _Assembler, result: _Synthesized, slots: SharedMemory | None, slot: int | None
) -> None:
    """Add a chunk to its assembly, from the pipe or from its shared slot."""
    if result.pcm is not None:
        assembler.add(result.done.doc, result.record, result.pcm)
        return
    assert slots is not None and slot is not None  # noqa: S101 - PCM came back in a slot
    start = slot * SLOT_BYTES
    with _buffer(slots)[start : start + result.record.samples * SAMPLE_WIDTH] as pcm:
        assembler.add(result.done.doc, result.record, pcm)


def _shared_slots(count: int) -> SharedMemory | None:
    """Shared memory for ``count`` chunks, or None where the system has none to give."""
    try:
        return SharedMemory(create=True, size=count * SLOT_BYTES)
    except OSError:
        return None


def _buffer(slots: SharedMemory) -> memoryview:
    buffer = slots.buf
    assert buffer is not None, "shared memory closed"  # noqa: S101
    return buffer


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: in-flight chunks are abandoned (assembled ones are kept)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
