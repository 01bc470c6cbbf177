"""Stalled jobs nobody follows get their missing chunks sent again (real Redis broker)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_text
from scheduler.planning import plan_job, write_plan
from ttsbatch.distributed import Cluster, rescue_stalled
from ttsbatch.messages import FINALIZE_QUEUE, LOCAL_QUEUE, chunk_id
from ttsbatch.models import EngineSpec, JobOptions, JobStatus, Manifest
from ttsbatch.settings import Settings
from ttsbatch.state import JobState, Rescue
from ttsbatch.storage.local import LocalStore


@pytest.fixture
def cluster(redis_db_url: str, local_store: LocalStore) -> Iterator[Cluster]:
    settings = Settings(redis_url=redis_db_url, store=local_store.url)
    result = Cluster(
        store=local_store,
        state=JobState.from_url(redis_db_url),
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


def queued(cluster: Cluster, queue: str = LOCAL_QUEUE) -> int:
    client = redis.Redis.from_url(cluster.producer.conf.broker_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_a_stalled_job_gets_its_missing_chunks_sent_once_per_stall(cluster: Cluster) -> None:
    manifest = running_job(cluster)
    missing = len(manifest.documents[0].chunks) - 1
    assert rescue_stalled(cluster, stall_after=60) == {}  # not stalled yet
    assert queued(cluster) == 0
    time.sleep(0.3)
    assert rescue_stalled(cluster, stall_after=0.2) == {manifest.job_id: Rescue.CHUNKS}
    assert queued(cluster) == missing
    assert rescue_stalled(cluster, stall_after=0.2) == {}  # the wait started again


def test_ended_jobs_leave_the_watch(cluster: Cluster) -> None:
    manifest = running_job(cluster)
    cluster.state.finish(manifest.job_id, JobStatus.SUCCEEDED)
    time.sleep(0.1)
    assert rescue_stalled(cluster, stall_after=0) == {}
    assert cluster.state.active_jobs() == []
    assert queued(cluster) == 0


def test_a_job_whose_finalize_message_was_lost_gets_it_again(cluster: Cluster) -> None:
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
    time.sleep(0.3)
    assert rescue_stalled(cluster, stall_after=0.2) == {manifest.job_id: Rescue.FINALIZE}
    assert queued(cluster, FINALIZE_QUEUE) == 1
