"""The local executor: a whole job in one process pool, on one machine.

The same ingest → split → synthesise → stitch functions as the distributed
system; only the executor (a process pool) and the store (a local folder)
differ. Each pool process holds one engine (espeak-ng is not thread-safe).
Retries of a chunk happen here, in the task layer, and nowhere else.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from scheduler.planning import plan_job, write_plan
from ttsbatch import keys
from ttsbatch.errors import EngineError, FatalEngineError, JobError, TtsBatchError
from ttsbatch.models import Document, JobOptions, JobStatus, Manifest
from ttsbatch.reporting import ChunkDone, Progress
from ttsbatch.settings import Settings
from ttsbatch.storage import Store, open_store
from worker.engines import Engine
from worker.engines.factory import create_engine
from worker.finalize import finalize_job
from worker.retrying import RetryPolicy
from worker.synthesis import synthesize_chunk

_engine: Engine | None = None
_store: Store | None = None


def _init_process(options: JobOptions, settings: Settings, store_url: str) -> None:
    """Pool initializer: one engine and one store per process."""
    global _engine, _store  # noqa: PLW0603 - per-process state is the point of an initializer
    # Ctrl-C goes to the parent, which stops the pool; children must not die mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine = create_engine(options.engine, settings)
    _store = open_store(store_url)


def _run_chunk(job_id: str, doc: str, index: int, text: str, policy: RetryPolicy) -> ChunkDone:
    """Synthesise one chunk in a pool process, retrying as the policy says."""
    assert _engine is not None and _store is not None, "pool process not initialised"  # noqa: S101
    attempt = 0
    while True:
        try:
            record, synthesized = synthesize_chunk(
                _store, _engine, job_id=job_id, doc=doc, index=index, text=text
            )
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
            return ChunkDone(
                doc, index, len(text), record.samples / record.sample_rate, synthesized
            )


def run_local(
    documents: Sequence[Document],
    options: JobOptions,
    *,
    store: Store,
    settings: Settings,
    jobs: int,
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
    keep_chunks: bool = False,
) -> Manifest:
    """Run a job to completion on this machine and return its final manifest.

    Rerunning with the same documents and options resumes the job: stored
    chunks are not synthesised again.

    Raises:
        JobError: a chunk failed permanently or ran out of retries.
        FatalEngineError: the provider refused every request (bad key, no credit).
    """
    progress = progress or Progress()
    policy = policy or RetryPolicy()
    manifest = write_plan(store, plan_job(documents, options), documents)
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    # A stored record marks a finished chunk: its existence is enough, no need to parse it.
    pending = (
        []
        if manifest.status is JobStatus.SUCCEEDED
        else [
            (plan.doc, chunk.index, texts[plan.doc][chunk.char_start : chunk.char_end])
            for plan in manifest.documents
            for chunk in plan.chunks
            if not store.exists(keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index))
        ]
    )
    total = sum(len(plan.chunks) for plan in manifest.documents)
    progress.start(manifest, total - len(pending), total)
    if manifest.status is JobStatus.SUCCEEDED:
        return manifest
    if pending:
        _synthesize_all(
            manifest,
            pending,
            options=options,
            settings=settings,
            store_url=store.url,
            jobs=jobs,
            on_done=progress.advance,
            policy=policy,
        )
    progress.stage(JobStatus.STITCHING)
    return finalize_job(store, manifest, keep_chunks=keep_chunks)


def _synthesize_all(
    manifest: Manifest,
    pending: Sequence[tuple[str, int, str]],
    *,
    options: JobOptions,
    settings: Settings,
    store_url: str,
    jobs: int,
    on_done: Callable[[ChunkDone], None],
    policy: RetryPolicy,
) -> None:
    # spawn: children must not inherit a parent's native engine state or threads.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(pending))),
        mp_context=context,
        initializer=_init_process,
        initargs=(options, settings, store_url),
    )
    # Keep a bounded window of work in flight so a cancel stops quickly.
    window = max(4, jobs * 4)
    queue = list(reversed(pending))
    running: set[Future[ChunkDone]] = set()
    clean = False
    try:
        while queue or running:
            while queue and len(running) < window:
                doc, index, text = queue.pop()
                running.add(pool.submit(_run_chunk, manifest.job_id, doc, index, text, policy))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                on_done(future.result())
        clean = True
    except FatalEngineError:
        raise
    except EngineError as exc:
        where = exc.__notes__[-1] if getattr(exc, "__notes__", None) else f"chunk {exc.chunk_index}"
        raise JobError(f"{where}: {exc}", job_id=manifest.job_id) from exc
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: in-flight chunks are abandoned (their writes are atomic)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
