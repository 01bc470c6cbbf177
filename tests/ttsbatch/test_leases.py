"""Chunk leases in a real Redis, on the test's own clock: who holds what, what is sent again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ttsbatch.messages import chunk_id
from ttsbatch.state import ChunkLeases, JobState, Take

from .test_state import Clock, manifest_of

TTL = 15.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(redis_db_url: str, clock: Clock) -> Iterator[JobState]:
    job_state = JobState.from_url(redis_db_url, namespace="t", clock=clock)
    job_state.init(manifest_of(6))
    yield job_state
    job_state.client.close()


@pytest.fixture
def leases(state: JobState) -> ChunkLeases:
    return state.leases


def chunk(index: int) -> str:
    return chunk_id("book", index)


def take(leases: ChunkLeases, index: int, owner: str = "w1", **options: object) -> Take:
    task_id = str(options.pop("task_id", f"task-{index}"))
    redelivered = bool(options.pop("redelivered", False))
    return leases.take(
        "job1", chunk(index), owner=owner, task_id=task_id, ttl=TTL, redelivered=redelivered
    )


def test_a_renewed_lease_is_never_claimed_and_a_dead_workers_is_claimed_once(
    leases: ChunkLeases, clock: Clock
) -> None:
    for index in range(2):
        assert take(leases, index) is Take.TAKEN
    for _ in range(10):
        clock.advance(TTL - 1)
        assert leases.renew("job1", {chunk(0): "w1", chunk(1): "w1"}, TTL) == set()
        assert leases.claim_expired("job1") == {}
    assert leases.expiries("job1") == dict.fromkeys((chunk(0), chunk(1)), clock.now + TTL)
    clock.advance(TTL + 0.001)  # the worker died
    claims: list[dict[str, str]] = []

    def claim() -> None:
        claims.append(leases.claim_expired("job1"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [c for found in claims for c in found]
    assert sorted(claimed) == [chunk(0), chunk(1)]  # each by one rescuer


def test_expired_leases_are_counted_as_resent(state: JobState, clock: Clock) -> None:
    take(state.leases, 0)
    clock.advance(TTL + 1)
    found = state.leases.claim_expired("job1")
    assert set(found) == {chunk(0)}
    assert found[chunk(0)].endswith(":" + chunk(0))  # the task id of its new message
    snapshot = state.snapshot("job1")
    assert snapshot is not None and snapshot.resent == 1


def test_a_live_lease_of_another_worker_keeps_a_second_message_away(
    leases: ChunkLeases, clock: Clock
) -> None:
    assert take(leases, 0, owner="w1") is Take.TAKEN
    assert take(leases, 0, owner="w2") is Take.BUSY
    clock.advance(TTL + 1)  # w1's lease ran out: w2 may take it over
    assert take(leases, 0, owner="w2") is Take.TAKEN
    assert leases.renew("job1", {chunk(0): "w1"}, TTL) == {chunk(0)}  # w1 learns it lost it


def test_a_claimed_chunk_is_lost_to_its_old_worker(leases: ChunkLeases, clock: Clock) -> None:
    take(leases, 0, owner="w1")
    clock.advance(TTL + 1)  # w1 was frozen for longer than its lease
    assert set(leases.claim_expired("job1")) == {chunk(0)}
    assert leases.renew("job1", {chunk(0): "w1"}, TTL) == {chunk(0)}
    assert not leases.hold_for_retry("job1", chunk(0), owner="w1", seconds=5)


def test_a_job_set_up_again_leaves_its_chunks_with_the_workers_holding_them(
    state: JobState, clock: Clock
) -> None:
    take(state.leases, 2)
    state.init(manifest_of(6))  # resumed while chunk 2 is being synthesised
    assert state.leases.renew("job1", {chunk(2): "w1"}, TTL) == set()
    assert take(state.leases, 2, owner="w2") is Take.BUSY  # the resume's message of it
    assert chunk(2) not in state.leases.queued("job1")
    clock.advance(TTL + 1)
    assert set(state.leases.claim_expired("job1")) == {chunk(2)}  # unless its worker dies


def test_a_stored_chunk_holds_no_lease(state: JobState, clock: Clock) -> None:
    take(state.leases, 0)
    state.mark_done("job1", chunk(0), chars=10, audio_seconds=1, synthesized=True, claimant="a")
    clock.advance(TTL + 1)
    assert state.leases.claim_expired("job1") == {}
    assert state.leases.renew("job1", {chunk(0): "w1"}, TTL) == {chunk(0)}


def test_a_chunk_failed_for_good_is_never_sent_again(state: JobState, clock: Clock) -> None:
    take(state.leases, 0)
    state.fail_chunk("job1", chunk(0), "HTTP 400", budget=5)
    clock.advance(TTL + 1)
    assert state.leases.claim_expired("job1") == {}
    assert state.leases.claim_missing("job1", [chunk(0)]) == {}


def test_chunks_queued_ahead_of_a_started_one_are_passed_and_lost_ones_come_back(
    leases: ChunkLeases, clock: Clock
) -> None:
    assert leases.queued("job1") == [chunk(i) for i in range(6)]  # the plan order
    take(leases, 0)
    take(leases, 3)  # 1 and 2 were popped before 3: lost, or a moment late
    assert leases.queued("job1") == [chunk(4), chunk(5)]
    clock.advance(0.05)
    take(leases, 2)  # late, not lost
    clock.advance(TTL)
    leases.renew("job1", {chunk(0): "w1", chunk(2): "w1", chunk(3): "w1"}, TTL)
    # 1's message was lost when its worker died between the broker's pop and its record.
    assert set(leases.claim_expired("job1")) == {chunk(1)}
    assert leases.queued("job1") == [chunk(4), chunk(5), chunk(1)]  # at the back


def test_chunks_waiting_behind_a_long_queue_are_never_sent_again(
    leases: ChunkLeases, clock: Clock
) -> None:
    take(leases, 0)  # one chunk of the job at a time, behind other jobs' messages
    for _ in range(100):
        clock.advance(TTL - 1)
        leases.renew("job1", {chunk(0): "w1"}, TTL)
        assert leases.claim_expired("job1") == {}
    assert leases.queued("job1") == [chunk(i) for i in range(1, 6)]


def test_only_the_message_that_holds_a_chunks_place_passes_others(
    leases: ChunkLeases, clock: Clock
) -> None:
    take(leases, 5)  # passes 0-4
    clock.advance(TTL + 1)
    resent = leases.claim_expired("job1")  # the whole job was lost, say: sent again
    assert len(resent) == 6
    assert leases.queued("job1") == [chunk(i) for i in range(6)]
    # An old message of chunk 4 (a retry behind a backlog, a broker restore) passes nothing:
    assert take(leases, 4, task_id="task-4") is Take.TAKEN
    assert take(leases, 3, task_id=resent[chunk(3)], redelivered=True) is Take.TAKEN
    assert leases.queued("job1") == [chunk(0), chunk(1), chunk(2), chunk(5)]
    # The re-sent message of chunk 2 does: 0 and 1 were sent before it.
    assert take(leases, 2, task_id=resent[chunk(2)]) is Take.TAKEN
    assert leases.queued("job1") == [chunk(5)]
    assert set(leases.expiries("job1")) == {chunk(i) for i in range(5)}


def test_a_retry_keeps_its_chunk_leased_for_the_countdown_then_it_comes_back(
    leases: ChunkLeases, clock: Clock
) -> None:
    take(leases, 0)
    assert leases.hold_for_retry("job1", chunk(0), owner="w1", seconds=60 + TTL)
    clock.advance(60 + TTL - 1)
    assert leases.claim_expired("job1") == {}  # waiting for its countdown
    assert take(leases, 0, owner="w2") is Take.TAKEN  # the retry starts: anyone may take it
    clock.advance(TTL + 1)
    assert set(leases.claim_expired("job1")) == {chunk(0)}  # w2 died too


def test_a_requeued_chunk_goes_to_the_back_of_the_queue_order(
    leases: ChunkLeases, clock: Clock
) -> None:
    take(leases, 0)
    assert leases.requeue("job1", chunk(0), owner="w1", task_id="task-0")
    assert leases.queued("job1")[-1] == chunk(0)
    take(leases, 5)  # sent before the requeued message: passes 1-4, not 0
    assert leases.queued("job1") == [chunk(0)]
    clock.advance(TTL + 1)
    assert chunk(0) not in leases.claim_expired("job1")


def test_a_stalled_job_claims_its_missing_chunks_without_a_live_lease(
    state: JobState, clock: Clock
) -> None:
    take(state.leases, 0)
    take(state.leases, 1)
    state.mark_done("job1", chunk(2), chars=10, audio_seconds=1, synthesized=True, claimant="a")
    clock.advance(TTL - 1)
    state.leases.renew("job1", {chunk(0): "w1"}, TTL)
    clock.advance(2)  # 1's lease ran out; 0's is live
    missing = {chunk(i) for i in range(6)} - state.done_chunks("job1")
    assert set(state.leases.claim_missing("job1", missing)) == {chunk(i) for i in (1, 3, 4, 5)}


def test_a_job_wiped_from_redis_is_worked_on_without_leases(
    state: JobState, leases: ChunkLeases
) -> None:
    state.client.flushdb()
    assert take(leases, 0) is Take.UNTRACKED
    assert leases.renew("job1", {chunk(0): "w1"}, TTL) == set()  # nobody else will take it
    assert state.client.keys("*") == []


def test_nothing_is_claimed_from_a_job_no_longer_running(state: JobState, clock: Clock) -> None:
    take(state.leases, 0)
    state.cancel("job1")
    clock.advance(TTL + 1)
    assert state.leases.claim_expired("job1") == {}
