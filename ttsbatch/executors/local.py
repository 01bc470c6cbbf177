"""The local executor: a whole job on one machine.

The same ingest → split → synthesise → stitch functions as the distributed
system; only the executor and the store (a local folder) differ. Chunks are
synthesised by a pool (:mod:`ttsbatch.executors.pools`): processes for espeak-ng (not
thread-safe, CPU-bound), threads of this process for provider engines
(network-bound), with ``jobs`` chunks in flight.

Chunks are not stored one by one: each is handed back to this process and
added, in plan order, to its document's :class:`~ttsbatch.executors.assembly.Assembly`,
so the audio is written once. Pool processes put a chunk's PCM in a slot of a
file all of them map (:mod:`ttsbatch.executors.slots`) rather than send it through the
pool's pipe; threads hand it over in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from scheduler.planning import plan_job, write_plan
from ttsbatch import keys
from ttsbatch.audio.stitching import SAMPLE_WIDTH
from ttsbatch.cache import ChunkCache
from ttsbatch.errors import BudgetError, EngineError, FatalEngineError, JobError
from ttsbatch.executors.assembly import Assembly, discard, journaled, open_assembly
from ttsbatch.executors.pools import (
    ChunkPool,
    Keeper,
    Synthesized,
    default_jobs,
    on_threads,
    open_pool,
)
from ttsbatch.executors.reporting import ChunkDone, Progress
from ttsbatch.executors.slots import Slots
from ttsbatch.models import (
    AudioReport,
    ChunkRecord,
    Document,
    DocumentPlan,
    JobOptions,
    JobStatus,
    Manifest,
)
from ttsbatch.settings import Settings
from ttsbatch.storage.files import FILE_MODE
from ttsbatch.storage.local import LocalStore
from ttsbatch.usage import Allowance, UsageCounter
from worker.finalize import write_succeeded
from worker.retrying import RetryPolicy

#: Slots are one per chunk in flight, at most this many (48 MiB).
MAX_SLOTS = 24


def run_local(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    store: LocalStore,
    settings: Settings,
    jobs: int | None = None,
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
    keep_chunks: bool = False,
    cache: ChunkCache | None = None,
    spend: Allowance | None = None,
) -> Manifest:
    """Run a job to completion on this machine and return its final manifest.

    Rerunning with the same documents and options resumes the job: chunks
    already assembled are not synthesised again.

    Args:
        jobs: chunks in flight (processes for espeak, threads for providers);
            by default :func:`ttsbatch.executors.pools.default_jobs`.
        keep_chunks: keep each document's journal of chunk records.
        cache: where chunks are looked up before they are synthesised, and kept
            after (:mod:`ttsbatch.cache`); ``None`` synthesises every chunk.
        spend: what this run may send (its caps); every request takes from it first.

    Raises:
        JobError: a chunk failed permanently or ran out of retries.
        BudgetError: the run reached its cap; what it made is kept for a rerun.
        FatalEngineError: the provider refused every request (bad key, no credit).
    """
    progress = progress or Progress()
    manifest = write_plan(store, plan_job(documents, options), documents)
    with _only_run(store, manifest.job_id):
        return _run(
            manifest,
            documents,
            store=store,
            settings=settings,
            jobs=jobs or default_jobs(options.engine.engine, settings),
            progress=progress,
            policy=policy,
            keep_chunks=keep_chunks,
            cache=cache,
            spend=spend,
        )


def _run(
    manifest: Manifest,
    documents: Sequence[Document],
    *,
    store: LocalStore,
    settings: Settings,
    jobs: int,
    progress: Progress,
    policy: RetryPolicy | None,
    keep_chunks: bool,
    cache: ChunkCache | None,
    spend: Allowance | None,
) -> Manifest:
    options = manifest.options
    total = sum(len(plan.chunks) for plan in manifest.documents)
    if manifest.status is JobStatus.SUCCEEDED:
        progress.start(manifest, total, total)
        for plan in manifest.documents:  # left by a run killed just after it succeeded
            discard(store, manifest.job_id, plan, keep_journal=keep_chunks)
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
            cache=cache,
            spend=spend,
        )
        progress.stage(JobStatus.STITCHING)
        assembler.finish_rest()
    finally:
        assembler.close()
    engine = options.engine
    usage = assembler.usage.usage(engine, settings.price_of(engine.engine, engine.model))
    done = write_succeeded(store, manifest, assembler.outputs, assembler.audio, usage)
    for plan in manifest.documents:
        discard(store, manifest.job_id, plan, keep_journal=keep_chunks)
    return done


@contextlib.contextmanager
def _only_run(store: LocalStore, job_id: str) -> Iterator[None]:
    """Hold the job's lock for the run: two runs of one job would interleave its files."""
    path = store.path(keys.local_lock_key(job_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobError(
                f"job {job_id} is already running in another process (the same inputs and"
                " options into the same folder): wait for it, or stop it and run again",
                job_id=job_id,
            ) from None
        yield
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


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
        self.audio: dict[str, AudioReport] = {}
        self.usage = UsageCounter()

    def slots_path(self) -> Path:
        """Where the run's slots file lives: beside the job's assemblies."""
        return self.store.path(keys.local_slots_key(self.manifest.job_id))

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
            if self.current.report is not None:
                self.audio[self.current.plan.doc] = self.current.report
            self.usage.merge(self.current.usage)
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
    cache: ChunkCache | None = None,
    spend: Allowance | None = None,
) -> None:
    """Synthesise ``pending`` in a pool and add each chunk to its assembly, in order.

    A chunk found in ``cache`` is not synthesised; one synthesised is kept there.
    """
    if not pending:
        return
    # Keep a bounded window of chunks in flight or waiting for an earlier one,
    # so that memory stays flat and a cancel stops quickly.
    window = max(8, jobs * 4)
    slots = None
    if not on_threads(options.engine.engine):
        slots = _shared_slots(assembler.slots_path(), min(window, MAX_SLOTS))
    free = list(range(slots.count)) if slots else []
    running: dict[Future[Synthesized], tuple[int, int | None]] = {}
    arrived: dict[int, tuple[Synthesized, int | None]] = {}
    submitted = added = 0
    clean = False
    try:
        pool = open_pool(
            options,
            settings,
            workers=max(1, min(jobs, len(pending))),
            policy=policy,
            slots=slots,
            cache=cache,
            spend=spend,
        )
        try:
            while added < len(pending):
                for position in _next_batch(
                    pending, submitted, window - len(running) - len(arrived)
                ):
                    doc, index, text = pending[position]
                    slot = free.pop() if free else None
                    running[pool.submit(doc, index, text, slot)] = (position, slot)
                    submitted += 1
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                _collect(finished, running, arrived, on_done)
                while added in arrived:
                    result, slot = arrived.pop(added)
                    _add(assembler, result, slots, slot, pool.keeper(pending[added][2]))
                    if slot is not None:
                        free.append(slot)
                    added += 1
            clean = True
        except BudgetError:
            # The requests in flight were paid for: let them end, and keep what every
            # request made (in the cache: the assembly takes chunks in order only).
            _keep_all(running, arrived, pool, pending, slots=slots, on_done=on_done)
            clean = True
            raise
        finally:
            pool.close(clean=clean)
    except FatalEngineError:
        raise
    except EngineError as exc:
        where = exc.__notes__[-1] if getattr(exc, "__notes__", None) else f"chunk {exc.chunk_index}"
        raise JobError(f"{where}: {exc}", job_id=job_id) from exc
    finally:
        if slots is not None:
            slots.close()
            slots.path.unlink(missing_ok=True)


def _next_batch(pending: Sequence[tuple[str, int, str]], submitted: int, room: int) -> list[int]:
    """Positions in ``pending`` to submit next: up to ``room`` of them, in plan order.

    Once the rest of the job fits in the window it goes at once, longest text
    first: the job ends when its slowest chunk does, which must not start last.
    """
    positions = range(submitted, submitted + max(0, min(room, len(pending) - submitted)))
    if submitted + room < len(pending):
        return list(positions)
    return sorted(positions, key=lambda position: -len(pending[position][2]))


def _collect(
    finished: Iterable[Future[Synthesized]],
    running: dict[Future[Synthesized], tuple[int, int | None]],
    arrived: dict[int, tuple[Synthesized, int | None]],
    on_done: Callable[[ChunkDone], None],
) -> None:
    """Move every chunk of ``finished`` (waiting for each) from ``running`` to ``arrived``;
    then raise the first failure among them, if any, once all the others are in."""
    failure: BaseException | None = None
    for future in finished:
        position, slot = running.pop(future)
        exc = future.exception()
        if exc is not None:
            failure = failure or exc
            continue
        result = future.result()
        on_done(result.done)
        arrived[position] = (result, slot)
    if failure is not None:
        raise failure


def _keep_all(
    running: dict[Future[Synthesized], tuple[int, int | None]],
    arrived: dict[int, tuple[Synthesized, int | None]],
    pool: ChunkPool,
    pending: Sequence[tuple[str, int, str]],
    *,
    slots: Slots | None,
    on_done: Callable[[ChunkDone], None],
) -> None:
    """Wait for the chunks in flight, then keep every chunk that arrived but was not added."""
    with contextlib.suppress(Exception):
        _collect(list(running), running, arrived, on_done)
    for position, (result, slot) in arrived.items():
        _keep(result, slots, slot, pool.keeper(pending[position][2]))


def _keep(result: Synthesized, slots: Slots | None, slot: int | None, keep: Keeper | None) -> None:
    """Keep a chunk just synthesised where a later run finds it."""
    if keep is not None and result.done.synthesized:
        with _pcm(result, slots, slot) as pcm:
            keep(result.record, pcm)


@contextlib.contextmanager
def _pcm(
    result: Synthesized, slots: Slots | None, slot: int | None
) -> Iterator[bytes | memoryview]:
    """A chunk's PCM, from the pipe or from its shared slot."""
    if result.pcm is not None:
        yield result.pcm
        return
    assert slots is not None and slot is not None  # noqa: S101 - PCM came back in a slot
    with slots.view(slot, result.record.samples * SAMPLE_WIDTH) as view:
        yield view


def _add(
    assembler: _Assembler,
    result: Synthesized,
    slots: Slots | None,
    slot: int | None,
    keep: Keeper | None,
) -> None:
    """Add a chunk to its assembly, from the pipe or from its shared slot; ``keep`` it if new."""
    with _pcm(result, slots, slot) as pcm:
        assembler.add(result.done.doc, result.record, pcm)
        if keep is not None and result.done.synthesized:
            keep(result.record, pcm)


def _shared_slots(path: Path, count: int) -> Slots | None:
    """The slots file for a run (a seam for tests: None sends every chunk through the pipe)."""
    return Slots.create(path, count)
