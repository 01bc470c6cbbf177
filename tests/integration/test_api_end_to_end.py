"""The API end to end: real HTTP, Redis, SeaweedFS, a worker process and the imitation provider.

A document POSTed to the API is followed through its event stream to
``succeeded``; its files, fetched through their presigned URLs, are the local
executor's outputs for the same input, byte for byte.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from scheduler.ingest import ingest_text
from ttsbatch import cli_client
from ttsbatch.client import ApiClient
from ttsbatch.models import Document
from ttsbatch.services import LOOPBACK, free_port
from ttsbatch.settings import ApiSettings

from .conftest import OPTIONS, Harness, make_book, wait_for

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
    args = [str(note), "--engine", engine.engine, "--model", str(engine.model), "--wait"]
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
    text = make_book(24).text
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))})
    app = create_app(settings, store=harness.store)
    engine = OPTIONS.engine
    with serve(app) as url, ApiClient(url, KEY) as api:
        job = api.submit_text(
            text,
            name="book",
            engine=engine.engine,
            model=engine.model,
            voice=engine.voice,
            max_chars=OPTIONS.max_chars,
        )
        assert job["status"] in {"queued", "running"}
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
