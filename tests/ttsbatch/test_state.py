"""Job state in a real Redis: counting, who is last, failing, cancelling, rebuilding."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ttsbatch import keys
from ttsbatch.messages import chunk_id
from ttsbatch.models import (
    BreakKind,
    ChunkRecord,
    ChunkSpan,
    DocumentPlan,
    JobOptions,
    JobStatus,
    Manifest,
    TimingSource,
)
from ttsbatch.state import JobState, Rescue, Take
from ttsbatch.storage import Store


def manifest_of(chunks: int, job_id: str = "job1") -> Manifest:
    spans = tuple(
        ChunkSpan(index=i, char_start=10 * i, char_end=10 * i + 10, break_after=BreakKind.SENTENCE)
        for i in range(chunks)
    )
    plan = DocumentPlan(
        doc="book",
        name="book",
        source_name="book.txt",
        source_sha256="0",
        chars=10 * chunks,
        chunks=spans,
    )
    return Manifest(
        job_id=job_id,
        created_at="2026-01-01T00:00:00+00:00",
        options=JobOptions(),
        documents=(plan,),
    )


class Clock:
    """The test's own time, passed into the Lua scripts: tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(redis_db_url: str, clock: Clock) -> Iterator[JobState]:
    job_state = JobState.from_url(redis_db_url, namespace="t", clock=clock)
    yield job_state
    job_state.client.close()


def test_a_redelivered_chunk_is_counted_once(state: JobState) -> None:
    state.init(manifest_of(3))
    first = state.mark_done(
        "job1", "book/000000", chars=10, audio_seconds=1.5, synthesized=True, claimant="a"
    )
    again = state.mark_done(
        "job1", "book/000000", chars=10, audio_seconds=1.5, synthesized=False, claimant="a"
    )
    assert (first.added, again.added) == (True, False)
    snapshot = state.snapshot("job1")
    assert snapshot is not None
    assert (snapshot.done, snapshot.total, snapshot.chars_done) == (1, 3, 10)
    assert snapshot.audio_seconds == pytest.approx(1.5)
    assert [e.chunk for e in state.events("job1", 0)] == ["book/000000"]


def test_exactly_one_of_many_racing_workers_is_told_it_is_last(state: JobState) -> None:
    total = 200
    state.init(manifest_of(total))
    lasts: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for index in range(worker, total, 8):
            for claimant in (f"task-{index}", f"task-{index}"):  # a redelivery too
                result = state.mark_done(
                    "job1",
                    chunk_id("book", index),
                    chars=10,
                    audio_seconds=0.1,
                    synthesized=True,
                    claimant=claimant,
                )
                if result.last:
                    with lock:
                        lasts.append(claimant)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The last chunk's message, delivered twice, is the only one told to finalize.
    assert len(set(lasts)) == 1
    assert state.status("job1") is JobStatus.STITCHING


def test_a_chunk_of_an_unknown_job_is_reported_as_unknown(state: JobState) -> None:
    result = state.mark_done(
        "gone", "book/000000", chars=1, audio_seconds=0.1, synthesized=True, claimant="x"
    )
    assert not result.known
    assert state.snapshot("gone") is None


def test_a_failed_chunk_past_the_budget_fails_the_job_with_its_reason(state: JobState) -> None:
    state.init(manifest_of(4))
    assert not state.fail_chunk("job1", "book/000001", "HTTP 400: bad voice", budget=1)
    assert state.fail_chunk("job1", "book/000002", "HTTP 400: bad voice", budget=1)
    snapshot = state.snapshot("job1")
    assert snapshot is not None
    assert snapshot.status is JobStatus.FAILED
    assert "book/000001: HTTP 400: bad voice" in snapshot.reasons()
    # A failed job is not finalized even if its chunks arrive later.
    for index in range(4):
        result = state.mark_done(
            "job1",
            chunk_id("book", index),
            chars=10,
            audio_seconds=0.1,
            synthesized=True,
            claimant=str(index),
        )
        assert not result.last


def test_cancel_wins_over_later_progress_and_marks_unknown_jobs_too(state: JobState) -> None:
    state.init(manifest_of(2))
    assert state.cancel("job1")
    assert not state.fail("job1", "too late")
    assert state.status("job1") is JobStatus.CANCELLED
    state.cancel("never-seen")
    assert state.status("never-seen") is JobStatus.CANCELLED


def test_the_finalize_lock_is_held_by_one_owner_at_a_time(state: JobState) -> None:
    assert state.lock("job1", "a", ttl=30)
    assert not state.lock("job1", "b", ttl=30)
    assert not state.renew_lock("job1", "b", ttl=30)
    assert state.renew_lock("job1", "a", ttl=30)
    state.unlock("job1", "b")
    assert not state.lock("job1", "b", ttl=30)
    state.unlock("job1", "a")
    assert state.lock("job1", "b", ttl=30)


def _store_chunk(store: Store, job_id: str, index: int, samples: int) -> None:
    record = ChunkRecord(
        index=index,
        sample_rate=24000,
        samples=samples,
        pcm_sha256="x",
        timing=TimingSource.NONE,
        engine="fake",
    )
    store.write(keys.chunk_pcm_key(job_id, "book", index), b"\0\0" * samples)
    store.write(
        keys.chunk_json_key(job_id, "book", index), record.model_dump_json(by_alias=True).encode()
    )


def test_state_is_rebuilt_from_the_store_alone(state: JobState, local_store: Store) -> None:
    manifest = manifest_of(5)
    for index in (0, 3):
        _store_chunk(local_store, "job1", index, 24000)
    # A PCM without its record is an unfinished chunk: not done.
    local_store.write(keys.chunk_pcm_key("job1", "book", 4), b"\0\0")
    state.client.flushdb()
    snapshot = state.rebuild_from_store(local_store, manifest)
    assert (snapshot.done, snapshot.total, snapshot.chars_done) == (2, 5, 20)
    assert snapshot.audio_seconds == pytest.approx(2.0)
    assert state.done_chunks("job1") == {"book/000000", "book/000003"}


def test_stored_tells_which_chunks_are_counted_in_one_call(state: JobState) -> None:
    state.init(manifest_of(3), {"book/000001": 1.0})
    assert state.stored("job1", ["book/000000", "book/000001", "book/000002"]) == [
        False,
        True,
        False,
    ]
    assert state.stored("job1", []) == []


def test_a_job_whose_chunks_are_all_stored_is_claimed_for_finalize_once(state: JobState) -> None:
    state.init(manifest_of(1), {"book/000000": 1.0})
    assert state.claim_finalize("job1", "resume-1").last
    assert not state.claim_finalize("job1", "resume-2").last


def test_a_running_job_is_rescued_only_after_the_stall_and_by_one_caller(
    state: JobState, clock: Clock
) -> None:
    state.init(manifest_of(3))
    assert state.active_jobs() == ["job1"]
    assert state.claim_rescue("job1", 60) is None  # just started
    clock.advance(60)
    winners = []

    def claim() -> None:
        if state.claim_rescue("job1", 60) is Rescue.CHUNKS:
            winners.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    snapshot = state.snapshot("job1")
    assert snapshot is not None and snapshot.stalls == 1


def test_each_rescue_doubles_the_wait_until_a_chunk_is_stored(
    state: JobState, clock: Clock
) -> None:
    state.init(manifest_of(3))
    clock.advance(120)
    assert state.claim_rescue("job1", 120) is Rescue.CHUNKS
    clock.advance(120)
    assert state.claim_rescue("job1", 120) is None  # now 240 s
    clock.advance(120)
    assert state.claim_rescue("job1", 120) is Rescue.CHUNKS  # then 480 s
    state.mark_done(
        "job1", "book/000000", chars=10, audio_seconds=1, synthesized=True, claimant="a"
    )
    clock.advance(120)
    assert state.claim_rescue("job1", 120) is Rescue.CHUNKS  # progress reset the wait


def test_a_live_chunk_lease_is_progress_not_a_stall(state: JobState, clock: Clock) -> None:
    state.init(manifest_of(3))
    taken = state.leases.take("job1", "book/000000", owner="w1", task_id="t1", ttl=15)
    assert taken is Take.TAKEN
    for _ in range(10):  # a long chunk, its worker renewing the lease
        clock.advance(14)
        assert state.leases.renew("job1", {"book/000000": "w1"}, 15) == set()
        assert state.claim_rescue("job1", 120) is None
    clock.advance(120)  # the worker died: its lease ran out long ago, and nothing moved
    assert state.claim_rescue("job1", 120) is Rescue.CHUNKS


def test_a_stitching_job_whose_finalize_never_started_gets_finalize_again(
    state: JobState, clock: Clock
) -> None:
    state.init(manifest_of(1))
    state.mark_done(
        "job1", "book/000000", chars=10, audio_seconds=1, synthesized=True, claimant="a"
    )
    assert state.status("job1") is JobStatus.STITCHING
    clock.advance(120)
    assert state.lock("job1", "worker-1", ttl=5)
    assert state.claim_rescue("job1", 120) is None  # a finalize is running
    state.unlock("job1", "worker-1")
    assert state.claim_rescue("job1", 120) is Rescue.FINALIZE


def test_only_an_active_job_is_rescued_and_ended_ones_are_forgotten(
    state: JobState, clock: Clock
) -> None:
    state.init(manifest_of(2))
    assert not state.forget_if_ended("job1")
    state.finish("job1", JobStatus.CANCELLED)
    clock.advance(1000)
    assert state.claim_rescue("job1", 0) is None
    assert state.forget_if_ended("job1")
    assert state.active_jobs() == []


def test_times_come_from_the_given_clock(state: JobState, clock: Clock) -> None:
    snapshot = state.init(manifest_of(1))
    assert snapshot.started_at == clock.now
    clock.advance(5)
    state.mark_done(
        "job1", "book/000000", chars=10, audio_seconds=1, synthesized=True, claimant="a"
    )
    later = state.snapshot("job1")
    assert later is not None and later.stitching_at == pytest.approx(clock.now)


def test_without_a_clock_the_scripts_use_redis_time(redis_db_url: str) -> None:
    state = JobState.from_url(redis_db_url, namespace="t")
    try:
        seconds, micros = state.client.time()
        snapshot = state.init(manifest_of(1))
        assert snapshot.started_at == pytest.approx(seconds + micros / 1e6, abs=5)
        assert state.claim_rescue("job1", 60) is None
    finally:
        state.client.close()
