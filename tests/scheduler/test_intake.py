"""Accepting a job cheaply and planning it later: ids, stored inputs, the planner and its task.

On a real Redis database and a local store; the planning task runs in Celery's
test worker on a threads pool in this process (never eager mode).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from scheduler.beat import BEAT_QUEUES, create_beat_app
from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_bytes, ingest_text
from scheduler.intake import (
    INLINE_LIMIT,
    PLAN_QUEUE,
    Given,
    Planner,
    PlanningBusyError,
    send_plan,
    store_inputs,
)
from scheduler.planning import doc_ids_of, job_id_for, job_id_of
from scheduler.ports import Ports
from scheduler.records import JobRecord, read_job_record, write_job_record
from ttsbatch import keys
from ttsbatch.errors import InputError
from ttsbatch.manifests import find_manifest
from ttsbatch.messages import LOCAL_QUEUE
from ttsbatch.models import JobOptions, JobStatus
from ttsbatch.settings import Settings
from ttsbatch.state import JobState
from ttsbatch.storage.local import LocalStore

OPTIONS = JobOptions()
TEXT = "It was a bright cold day in April. The clocks were striking thirteen."


@pytest.fixture
def planner(redis_db_url: str, local_store: LocalStore) -> Iterator[Planner]:
    settings = Settings(redis_url=redis_db_url, store=local_store.url)
    made = Planner(
        store=local_store,
        state=JobState.from_url(redis_db_url),
        producer=create_producer(settings),
        max_chars=1000,
    )
    yield made
    made.state.client.close()
    made.producer.close()


def accept(planner: Planner, job_id: str, *given: Given) -> JobRecord:
    """What the API does to accept a job: record and input stored, queued in Redis."""
    names = [item.document_name for item in given]
    record = JobRecord(
        job_id=job_id,
        tenant="t",
        name=names[0],
        created_at=1.0,
        options=OPTIONS,
        documents=tuple(doc_ids_of(names)),
        inputs=store_inputs(planner.store, job_id, given),
    )
    write_job_record(planner.store, record)
    planner.state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
    return record


def queued(redis_url: str, queue: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_a_job_named_from_its_inputs_bytes_has_the_id_ingesting_them_first_gives() -> None:
    text = Given.text(TEXT, "opening")
    upload = Given.file("C:\\Users\\me\\notes.md", b"# Notes\n\nSome *text*.\n")
    documents = [
        ingest_text(TEXT, "opening"),
        ingest_bytes(upload.data, "C:\\Users\\me\\notes.md"),
    ]
    assert [d.name for d in documents] == [text.document_name, upload.document_name]
    assert upload.document_name == "notes"
    identities = [(text.document_name, text.sha256), (upload.document_name, upload.sha256)]
    assert job_id_of(identities, OPTIONS) == job_id_for(documents, OPTIONS)


def test_an_empty_input_is_refused_at_once_with_ingestions_message() -> None:
    with pytest.raises(InputError) as refused:
        Given.text(" \n ", "blank")
    with pytest.raises(InputError) as ingested:
        ingest_text(" \n ", "blank")
    assert str(refused.value) == str(ingested.value)
    with pytest.raises(InputError, match=r"^empty\.txt: the file is empty"):
        Given.file("dir/empty.txt", b"\n\n")


def test_a_small_text_stays_in_the_record_and_a_file_or_a_long_text_gets_its_own_object(
    local_store: LocalStore,
) -> None:
    long_text = "Words and more words. " * (INLINE_LIMIT // 20)
    inputs = store_inputs(
        local_store,
        "j1",
        [Given.text(TEXT, "a"), Given.file("b.txt", b"File text."), Given.text(long_text, "c")],
    )
    assert inputs[0].text == TEXT and inputs[0].key is None
    assert [i.key for i in inputs[1:]] == ["jobs/j1/input/001", "jobs/j1/input/002"]
    assert local_store.read("jobs/j1/input/002").decode() == long_text


def test_an_accepted_job_is_planned_into_the_store_and_its_chunks_are_sent(
    planner: Planner, redis_db_url: str
) -> None:
    accept(planner, "j1", Given.text(TEXT, "opening"))
    assert planner("j1") is JobStatus.RUNNING
    manifest = find_manifest(planner.store, "j1")
    assert manifest is not None and [plan.doc for plan in manifest.documents] == ["opening"]
    text = planner.store.read(keys.output_key("j1", "opening", "source.txt")).decode()
    assert text == ingest_text(TEXT, "opening").text
    snapshot = planner.state.snapshot("j1")
    assert snapshot is not None and snapshot.total == len(manifest.documents[0].chunks)
    assert queued(redis_db_url, LOCAL_QUEUE) == snapshot.total
    assert planner("j1") is None  # a second message changes nothing
    assert queued(redis_db_url, LOCAL_QUEUE) == snapshot.total


def test_an_input_that_cannot_be_read_fails_the_job_with_the_message_ingestion_gives(
    planner: Planner,
) -> None:
    broken = Given.file("book.epub", b"PK\x03\x04 this is no zip archive")
    with pytest.raises(InputError) as ingested:
        ingest_bytes(broken.data, "book.epub")
    accept(planner, "j2", broken)
    assert planner("j2") is JobStatus.FAILED
    record = read_job_record(planner.store, "j2")
    assert record is not None and record.status is JobStatus.FAILED
    assert record.error == str(ingested.value)
    snapshot = planner.state.snapshot("j2")  # followers and webhooks read it as any failure
    assert snapshot is not None and snapshot.status is JobStatus.FAILED
    assert snapshot.reasons() == str(ingested.value)
    assert find_manifest(planner.store, "j2") is None


def test_a_job_over_the_characters_limit_once_ingested_fails_saying_the_limit(
    planner: Planner,
) -> None:
    data = ("A sentence here. " * 100).encode()
    chars = len(ingest_bytes(data, "long.txt").text)
    accept(planner, "j3", Given.file("long.txt", data))
    assert planner("j3") is JobStatus.FAILED
    record = read_job_record(planner.store, "j3")
    assert record is not None and record.error == (
        f"{chars} characters in one job; the limit is 1000: split the text over several jobs"
        " or use /v1/runs"
    )


def test_a_job_cancelled_before_it_is_planned_is_left_alone(planner: Planner) -> None:
    record = accept(planner, "j4", Given.text(TEXT, "opening"))
    planner.state.cancel("j4")
    write_job_record(planner.store, record.model_copy(update={"status": JobStatus.CANCELLED}))
    assert planner("j4") is None
    assert find_manifest(planner.store, "j4") is None
    assert planner.state.status("j4") is JobStatus.CANCELLED


def test_a_job_another_planner_is_planning_is_tried_again_later(planner: Planner) -> None:
    accept(planner, "j5", Given.text(TEXT, "opening"))
    planner.state.client.set(f"{planner.state.namespace}:planning:j5", "1", ex=60)
    with pytest.raises(PlanningBusyError):
        planner("j5")
    planner.state.client.delete(f"{planner.state.namespace}:planning:j5")
    assert planner("j5") is JobStatus.RUNNING


def test_a_job_accepted_again_after_it_succeeded_is_marked_succeeded_not_run_again(
    planner: Planner, redis_db_url: str
) -> None:
    accept(planner, "j6", Given.text(TEXT, "opening"))
    planner("j6")
    manifest = find_manifest(planner.store, "j6")
    assert manifest is not None
    succeeded = manifest.model_copy(update={"status": JobStatus.SUCCEEDED})
    planner.store.write(keys.manifest_key("j6"), succeeded.model_dump_json(by_alias=True).encode())
    sent = queued(redis_db_url, LOCAL_QUEUE)
    planner.state.set_status("j6", JobStatus.QUEUED, only_if_active=False)
    assert planner("j6") is JobStatus.SUCCEEDED
    assert planner.state.status("j6") is JobStatus.SUCCEEDED
    assert queued(redis_db_url, LOCAL_QUEUE) == sent


def no_ports() -> Ports:
    raise AssertionError("planning needs no ports")


def test_the_beat_consumes_the_planning_task_and_plans_the_job(
    planner: Planner, redis_db_url: str, local_store: LocalStore
) -> None:
    assert PLAN_QUEUE in BEAT_QUEUES
    settings = Settings(redis_url=redis_db_url, store=local_store.url)
    app = create_beat_app(settings, connect=no_ports)
    accept(planner, "j7", Given.text(TEXT, "opening"))
    worker: Any = start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=list(BEAT_QUEUES),
    )
    producer = create_producer(settings)
    with worker:
        send_plan(producer, "j7")
        deadline = time.monotonic() + 20
        while planner.state.status("j7") is not JobStatus.RUNNING:
            assert time.monotonic() < deadline, "the job was not planned"
            time.sleep(0.05)
    producer.close()
    app.close()
    assert find_manifest(local_store, "j7") is not None
