"""The API end to end: real HTTP, Redis, SeaweedFS, a worker process and the imitation provider.

A document POSTed to the API is followed through its event stream to
``succeeded``; its files, fetched through their presigned URLs, are the local
executor's outputs for the same input, byte for byte. On a deployment whose
default engine is Together, a job that names no engine is spoken by Together;
one whose engine no running worker serves is refused, and the workers'
heartbeats follow the real processes. A submitted job is planned by a real
``ttsbatch beat`` process. After ``FLUSHALL`` the API lists the same jobs, runs
and schedules, the beat restores the schedules' entries, and new jobs run.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from scheduler.ingest import ingest_file, ingest_text
from tests.images import jpeg
from ttsbatch.cli import client as cli_client
from ttsbatch.client import ApiClient
from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread
from ttsbatch.dev.services import LOOPBACK, free_port
from ttsbatch.dev.stack import stop_process, ttsbatch_command
from ttsbatch.executors.local import run_local
from ttsbatch.executors.outputs import download_outputs
from ttsbatch.messages import FINALIZE_QUEUE, LOCAL_QUEUE, PROVIDER_QUEUE
from ttsbatch.models import AudioFormat, Cover, Document
from ttsbatch.roster import Roster
from ttsbatch.settings import ApiSettings, JobDefaults, Settings, TogetherSettings
from ttsbatch.storage.local import LocalStore

from .conftest import API_KEY, OPTIONS, Harness, make_book, wait_for

pytestmark = pytest.mark.integration

KEY = "e2e-key"
OUTPUTS = ("wav", "timestamps.json", "source.txt", "srt", "vtt")


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` over HTTP on a loopback port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=20, what="the API to start")
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def beat(harness: Harness, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``ttsbatch beat`` (it plans the jobs the API accepts) for the test, with ``env``."""
    log_path = harness.tmp_path / "logs" / "beat.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ttsbatch_command("beat"),
            env={**harness.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        stop_process(process, 20)


def wait_for_workers(harness: Harness, count: int) -> None:
    """Wait until ``count`` workers consume the provider and finalize queues (heartbeats)."""
    roster = Roster.from_url(harness.redis_url)
    try:
        wait_for(
            lambda: all(len(roster.workers(q)) >= count for q in (PROVIDER_QUEUE, FINALIZE_QUEUE)),
            timeout=60,
            what=f"{count} worker(s) to announce themselves",
            explain=lambda: harness.workers.log_text()[-3000:],
        )
    finally:
        roster.client.close()


def check_the_cli(url: str, job_id: str, tmp_path: Path) -> None:
    """The CLI client against the same server: status, jobs, fetch, and submit --wait."""
    runner = CliRunner()
    env = {"TTSBATCH_SERVER": url, "TTSBATCH_API_KEY": KEY}
    shown = runner.invoke(cli_client.status, [job_id], env=env)
    assert shown.exit_code == 0 and f"job {job_id}: succeeded" in shown.output
    listed = runner.invoke(cli_client.jobs, [], env=env)
    assert listed.exit_code == 0 and listed.output.startswith(job_id)
    fetched = runner.invoke(cli_client.fetch, [job_id, "-o", str(tmp_path / "fetched")], env=env)
    assert fetched.exit_code == 0 and (tmp_path / "fetched" / "book.wav").exists()
    note = tmp_path / "note.txt"
    note.write_text("A short note. It has two sentences.")
    engine = OPTIONS.engine
    args = [str(note), "--engine", str(engine.engine), "--model", str(engine.model), "--wait"]
    submitted = runner.invoke(
        cli_client.submit,
        [*args, "--voice", str(engine.voice), "-o", str(tmp_path / "note")],
        env=env,
    )
    assert submitted.exit_code == 0, submitted.output
    assert "succeeded" in submitted.output and (tmp_path / "note" / "note.wav").exists()


def test_a_document_posted_to_the_api_succeeds_and_its_files_match_the_local_executor(
    make_harness: Callable[..., Harness], reference: Callable[[Document], Path], tmp_path: Path
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    text = make_book(24).text
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    with beat(harness), serve(app) as url, ApiClient(url, KEY) as api:
        job = api.submit_text(
            text,
            name="book",
            engine=engine.engine,
            model=engine.model,
            voice=engine.voice,
            max_chars=OPTIONS.max_chars,
        )
        assert job["status"] in {"queued", "running"}  # accepted; the beat plans it
        events = list(api.events(job["id"]))
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "end" and set(kinds[:-1]) <= {"progress"}
        final = events[-1][1]
        assert final["status"] == "succeeded", final
        assert final["progress"]["chunks_done"] == final["progress"]["chunks_total"] >= 20
        done = [body["progress"]["chunks_done"] for _, body in events]
        assert done == sorted(done)
        written = api.download(job["id"], tmp_path / "out")
        check_the_cli(url, job["id"], tmp_path)
    names = {path.name for path in written}
    assert names == {f"book.{suffix}" for suffix in OUTPUTS} | {"manifest.json"}
    expected = reference(ingest_text(text, "book"))
    for suffix in OUTPUTS:
        produced = (tmp_path / "out" / f"book.{suffix}").read_bytes()
        assert produced == (expected / f"book.{suffix}").read_bytes(), suffix


def follow(api: httpx.Client, job_id: str) -> dict[str, object]:
    """Poll a job until it ends; return its last resource."""

    def ended() -> dict[str, object] | None:
        job: dict[str, object] = api.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        return job if job["status"] in {"succeeded", "failed", "cancelled"} else None

    ended_job: dict[str, object] = wait_for(ended, timeout=60, what=f"job {job_id} to end")
    return ended_job


def test_a_job_without_engine_on_a_together_deployment_is_spoken_by_together(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness()
    harness.workers.start(1)  # the provider and finalize queues only, as `dev --engine together`
    wait_for_workers(harness, 1)
    defaults = JobDefaults(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart")
    settings = harness.settings.model_copy(
        update={"api": ApiSettings(keys=SecretStr(KEY)), "defaults": defaults}
    )
    app = create_app(settings, store=harness.store)
    auth = {"Authorization": f"Bearer {KEY}"}
    with (
        beat(harness),
        serve(app) as url,
        httpx.Client(base_url=url, headers=auth, timeout=30) as api,
    ):
        plain = api.post("/v1/jobs", json={"input": "Plain words. Nothing more.", "name": "a"})
        assert plain.status_code == 202, plain.text
        job = follow(api, plain.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["options"]["engine"]["engine"] == "together"  # type: ignore[index]
        spoken = [e for e in harness.provider.state.log() if e["status"] == 200]
        assert spoken and {(e["model"], e["voice"]) for e in spoken} == {
            ("hexgrad/Kokoro-82M", "af_heart")
        }

        # The seed's request shape: model, voice and input, no engine.
        seed = {"model": "canopylabs/orpheus-3b-0.1-ft", "voice": "tara", "input": "Seed shape."}
        asked = api.post("/v1/jobs", json=seed)
        assert asked.status_code == 202, asked.text
        assert follow(api, asked.json()["id"])["status"] == "succeeded"
        assert ("canopylabs/orpheus-3b-0.1-ft", "tara") in {
            (e["model"], e["voice"]) for e in harness.provider.state.log()
        }

        # No worker here reads the espeak queue: refused now, not left running.
        refused = api.post("/v1/jobs", json={"input": "Hello.", "engine": "espeak"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "no_worker"
        assert f"engine espeak: nobody consumes queue {LOCAL_QUEUE}" in refused.json()["detail"]

        # A worker that stops withdraws its heartbeat at once: nothing serves any engine.
        harness.workers.stop()
        gone = api.post("/v1/jobs", json={"input": "After the workers left."})
        assert gone.status_code == 503, gone.text
        assert "no worker is running at all" in gone.json()["detail"]


def test_after_flushall_the_api_lists_the_same_jobs_runs_and_schedules_and_all_still_work(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    harness.store.write("corpus/a.txt", b"A scheduled document. It has two sentences.")
    source = f"s3://{harness.store.bucket}/{harness.store.prefix}corpus/"
    api_settings = ApiSettings(keys=SecretStr(KEY), source_buckets=harness.store.bucket)
    settings = harness.settings.model_copy(update={"api": api_settings})
    engine = {"engine": OPTIONS.engine.engine, "model": OPTIONS.engine.model}
    engine["voice"] = OPTIONS.engine.voice
    auth = {"Authorization": f"Bearer {KEY}"}

    def listings(api: httpx.Client) -> dict[str, list[str]]:
        return {
            kind: [item["id"] for item in api.get(f"/v1/{kind}?limit=200").json()["items"]]
            for kind in ("jobs", "runs", "schedules")
        }

    with (
        beat(harness),
        serve(create_app(settings, store=harness.store)) as url,
        httpx.Client(base_url=url, headers=auth, timeout=30) as api,
    ):
        job = api.post("/v1/jobs", json={"input": "Before the flush.", **engine}).json()
        assert follow(api, job["id"])["status"] == "succeeded"
        docs = [{"name": "d1", "text": "A run's document."}]
        run = api.post("/v1/runs", json={"documents": docs, **engine}).json()
        schedule = api.post("/v1/schedules", json={"cron": "0 3 * * *", "source": source, **engine})
        assert schedule.status_code == 201, schedule.text
        entry = f"ttsbatch:redbeat:ttsbatch-schedule:{schedule.json()['id']}"
        before = listings(api)
        assert before["runs"] == [run["id"]] and before["schedules"] == [schedule.json()["id"]]

        broker = redis.Redis.from_url(harness.redis_url)
        try:
            broker.flushall()
            assert listings(api) == before
            wait_for(
                lambda: broker.exists(entry), timeout=30, what="the beat to restore the schedule"
            )
        finally:
            broker.close()
        assert follow(api, job["id"])["status"] == "succeeded"  # from its manifest
        wait_for_workers(harness, 1)  # their next heartbeat
        after = api.post("/v1/jobs", json={"input": "After the flush.", **engine}).json()
        assert follow(api, after["id"])["status"] == "succeeded"  # the beat plans, workers speak


def test_an_m4b_job_through_the_api_is_the_same_file_a_local_run_writes(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """Mastered and encoded on a worker (finalize), byte for byte what ``synth`` writes."""
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    book = tmp_path / "book.md"
    book.write_text(
        "\n\n".join(f"# Part {n}\n\n{make_book(4).text}" for n in ("One", "Two")), encoding="utf-8"
    )
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    m4b = {"audio_format": "m4b", "split_chapters": True}
    image = jpeg()
    with beat(harness), serve(app) as url, ApiClient(url, KEY) as api:
        job = api.submit_files(
            [book],
            engine=engine.engine,
            model=engine.model,
            voice=engine.voice,
            max_chars=OPTIONS.max_chars,
            cover=("cover.jpg", image),
            **m4b,
        )
        final = list(api.events(job["id"]))[-1][1]
        assert final["status"] == "succeeded", final
        written = {path.name for path in api.download(job["id"], tmp_path / "api")}
    with run_in_thread(FakeProviderConfig()) as provider:
        local = LocalStore(tmp_path / "local")
        cover = Cover(media_type="image/jpeg", data=image)
        manifest = run_local(
            [ingest_file(book).model_copy(update={"cover": cover})],
            OPTIONS.model_copy(
                update={
                    "audio_format": AudioFormat.M4B,
                    "split_chapters": True,
                    "cover_sha256": hashlib.sha256(image).hexdigest(),
                }
            ),
            store=local,
            settings=Settings(
                together=TogetherSettings(base_url=provider.api_url, api_key=API_KEY)
            ),
            jobs=2,
        )
    expected = download_outputs(local, manifest, tmp_path / "expected")
    assert {"book.m4b", "book.001.m4b", "book.002.m4b", "book.cover.jpg"} <= written
    for path in expected:
        assert (tmp_path / "api" / path.name).read_bytes() == path.read_bytes(), path.name
    report = manifest.audio["book"].loudness
    assert report is not None and abs(report.output_lufs + 18) <= 1


def test_the_same_text_is_paid_once_per_tenant_and_a_dry_run_says_so_first(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """Tenant A's second job over the same text sends nothing; tenant B's pays again."""
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    text = make_book(10).text
    keys = SecretStr(f"{KEY},other-tenant-key")
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=keys)})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    fields = {
        "engine": engine.engine,
        "model": engine.model,
        "voice": engine.voice,
        "max_chars": OPTIONS.max_chars,
    }
    log = harness.provider.state.log
    with beat(harness), serve(app) as url:
        with ApiClient(url, KEY) as api:
            dry = api.submit_text(text, name="first", dry_run=True, **fields)
            assert log() == [] and dry["cached_chunks"] == 0 and dry["billed_chars"] > 0
            first = list(api.events(api.submit_text(text, name="first", **fields)["id"]))[-1][1]
            assert first["status"] == "succeeded", first
            paid = len(log())
            assert paid == dry["chunks"] and first["usage"]["chars_sent"] == dry["billed_chars"]
            again = api.submit_text(text, name="again", dry_run=True, **fields)
            assert again["billed_chars"] == 0 and again["cached_chunks"] == dry["chunks"]
            second = list(api.events(api.submit_text(text, name="again", **fields)["id"]))[-1][1]
            assert second["status"] == "succeeded", second
            assert len(log()) == paid  # nothing sent: every chunk came from the tenant's cache
            assert second["usage"]["chars_cached"] == dry["chars"]
            assert second["usage"]["chars_sent"] == 0
        with ApiClient(url, "other-tenant-key") as other:
            assert (
                other.submit_text(text, name="first", dry_run=True, **fields)["cached_chunks"] == 0
            )
            third = list(other.events(other.submit_text(text, name="first", **fields)["id"]))[-1][1]
            assert third["status"] == "succeeded", third
            assert len(log()) == 2 * paid  # another tenant's cache: paid again


def test_a_job_over_its_cap_fails_before_any_request_saying_what_it_would_cost(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    fields = {"engine": engine.engine, "model": engine.model, "voice": engine.voice}
    with beat(harness), serve(app) as url, ApiClient(url, KEY) as api:
        job = api.submit_text(make_book(10).text, name="capped", max_billed_chars=50, **fields)
        final = list(api.events(job["id"]))[-1][1]
        assert final["status"] == "failed"
        assert "refused before anything was sent" in final["error"]
        assert "characters would be billed" in final["error"]
        assert harness.provider.state.log() == []
        api.retry(job["id"], max_billed_chars=100_000)  # the cap raised: the job goes on
        assert list(api.events(job["id"]))[-1][1]["status"] == "succeeded"
        within = api.submit_text(make_book(10).text, name="within", max_cost=1.0, **fields)
        assert list(api.events(within["id"]))[-1][1]["status"] == "succeeded"


def test_a_tenants_monthly_cap_refuses_the_job_that_would_pass_it(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    api_settings = ApiSettings(keys=SecretStr(KEY), monthly_cost_cap=0.0003)  # 75 Kokoro chars
    settings = harness.settings.model_copy(update={"api": api_settings})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    fields = {"engine": engine.engine, "model": engine.model, "voice": engine.voice}
    planner = beat(harness, TTSBATCH_API_MONTHLY_COST_CAP="0.0003")
    with planner, serve(app) as url, ApiClient(url, KEY) as api:
        first = api.submit_text("The keeper climbed the stair at dusk. He lit the lamp.", **fields)
        assert list(api.events(first["id"]))[-1][1]["status"] == "succeeded"
        asked = len(harness.provider.state.log())
        second = api.submit_text(
            "A second text of about the same length, spoken later on.", **fields
        )
        final = list(api.events(second["id"]))[-1][1]
        assert final["status"] == "failed" and "left this month" in final["error"]
        assert len(harness.provider.state.log()) == asked
