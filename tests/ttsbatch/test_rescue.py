"""Jobs nobody follows get what they wait for sent again (real Redis broker, the test's clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_text
from scheduler.planning import plan_job, write_plan
from ttsbatch.executors.distributed import Cluster, rescue_stalled
from ttsbatch.messages import FINALIZE_QUEUE, LOCAL_QUEUE, chunk_id
from ttsbatch.models import EngineSpec, JobOptions, JobStatus, Manifest
from ttsbatch.settings import Settings
from ttsbatch.state import JobState, Rescue, Take
from ttsbatch.storage.local import LocalStore

from .test_state import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cluster(redis_db_url: str, local_store: LocalStore, clock: Clock) -> Iterator[Cluster]:
    settings = Settings(redis_url=redis_db_url, store=local_store.url)
    result = Cluster(
        store=local_store,
        state=JobState.from_url(redis_db_url, clock=clock),
        producer=create_producer(settings),
    )
    yield result
    result.close()


def running_job(cluster: Cluster) -> Manifest:
    document = ingest_text("One sentence here. " * 40, name="book")
    options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=60)
    manifest = write_plan(cluster.store, plan_job([document], options), [document])
    cluster.state.init(manifest)
    first = chunk_id(manifest.documents[0].doc, 0)
    cluster.state.mark_done(
        manifest.job_id, first, chars=1, audio_seconds=1, synthesized=True, claimant="x"
    )
    return manifest


def queued(cluster: Cluster, queue: str = LOCAL_QUEUE) -> list[dict[str, str]]:
    """The headers of the messages waiting in ``queue``, oldest first."""
    client = redis.Redis.from_url(cluster.producer.conf.broker_url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    return [json.loads(item)["headers"] for item in reversed(raw)]


def test_a_stalled_job_gets_its_missing_chunks_sent_once_per_stall(
    cluster: Cluster, clock: Clock
) -> None:
    manifest = running_job(cluster)
    missing = len(manifest.documents[0].chunks) - 1
    assert rescue_stalled(cluster, stall_after=60) == {}  # not stalled yet
    assert queued(cluster) == []
    clock.advance(60)
    assert rescue_stalled(cluster, stall_after=60) == {manifest.job_id: Rescue.CHUNKS}
    assert len(queued(cluster)) == missing
    assert rescue_stalled(cluster, stall_after=60) == {}  # the wait started again


def test_ended_jobs_leave_the_watch(cluster: Cluster, clock: Clock) -> None:
    manifest = running_job(cluster)
    cluster.state.finish(manifest.job_id, JobStatus.SUCCEEDED)
    clock.advance(1000)
    assert rescue_stalled(cluster, stall_after=0) == {}
    assert cluster.state.active_jobs() == []
    assert queued(cluster) == []


def test_a_job_whose_finalize_message_was_lost_gets_it_again(
    cluster: Cluster, clock: Clock
) -> None:
    manifest = running_job(cluster)
    for chunk in manifest.documents[0].chunks[1:]:
        cluster.state.mark_done(
            manifest.job_id,
            chunk_id(manifest.documents[0].doc, chunk.index),
            chars=1,
            audio_seconds=1,
            synthesized=True,
            claimant="last",
        )
    clock.advance(60)
    assert rescue_stalled(cluster, stall_after=60) == {manifest.job_id: Rescue.FINALIZE}
    assert len(queued(cluster, FINALIZE_QUEUE)) == 1


def test_chunks_of_a_dead_worker_are_sent_again_after_their_lease_not_the_stall(
    cluster: Cluster, clock: Clock
) -> None:
    manifest = running_job(cluster)
    doc, job_id = manifest.documents[0].doc, manifest.job_id
    held = [chunk_id(doc, 1), chunk_id(doc, 2)]
    for n, chunk in enumerate(held):
        taken = cluster.state.leases.take(job_id, chunk, owner="w1", task_id=f"t{n}", ttl=15)
        assert taken is Take.TAKEN
    clock.advance(14)
    assert rescue_stalled(cluster) == {}
    clock.advance(2)  # the worker died 16 s ago: its leases ran out
    assert rescue_stalled(cluster) == {job_id: Rescue.LEASES}
    messages = queued(cluster)
    assert [m["id"].rsplit(":", 1)[1] for m in messages] == held  # their own task ids
    assert rescue_stalled(cluster) == {}  # claimed once
    snapshot = cluster.state.snapshot(job_id)
    assert snapshot is not None and (snapshot.resent, snapshot.stalls) == (2, 0)
    # The queue moves on: the rest of the first dispatch, then the re-sent chunk 2 start;
    # chunk 1's re-sent message, sent before chunk 2's, was lost as well.
    alive = {chunk_id(doc, i): "w2" for i in range(3, len(manifest.documents[0].chunks))}
    for chunk in alive:
        cluster.state.leases.take(job_id, chunk, owner="w2", task_id="first", ttl=15)
    cluster.state.leases.take(job_id, held[1], owner="w2", task_id=messages[1]["id"], ttl=15)
    alive[held[1]] = "w2"
    clock.advance(16)
    assert cluster.state.leases.renew(job_id, alive, 15) == set()
    assert rescue_stalled(cluster) == {job_id: Rescue.LEASES}
    assert [m["id"].rsplit(":", 1)[1] for m in queued(cluster)] == [*held, held[0]]


def test_a_job_whose_chunks_are_being_synthesised_is_not_stalled(
    cluster: Cluster, clock: Clock
) -> None:
    manifest = running_job(cluster)
    doc, job_id = manifest.documents[0].doc, manifest.job_id
    total = len(manifest.documents[0].chunks)
    cluster.state.leases.take(job_id, chunk_id(doc, 1), owner="w1", task_id="t", ttl=15)
    for _ in range(10):  # a slow provider: nothing stored for minutes, the worker alive
        clock.advance(14)
        cluster.state.leases.renew(job_id, {chunk_id(doc, 1): "w1"}, 15)
        assert rescue_stalled(cluster, stall_after=60) == {}
    cluster.state.mark_done(
        job_id, chunk_id(doc, 1), chars=1, audio_seconds=1, synthesized=True, claimant="t"
    )
    clock.advance(60)  # then nothing: the other messages were lost
    assert rescue_stalled(cluster, stall_after=60) == {job_id: Rescue.CHUNKS}
    sent = [m["id"].rsplit(":", 1)[1] for m in queued(cluster)]
    assert sent == [chunk_id(doc, i) for i in range(2, total)]
    snapshot = cluster.state.snapshot(job_id)
    assert snapshot is not None and (snapshot.resent, snapshot.stalls) == (0, 1)
