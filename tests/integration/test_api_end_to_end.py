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
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from scheduler.ingest import ingest_text
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
    names = {path.name for path in written}
    assert names == {f"book.{suffix}" for suffix in OUTPUTS} | {"manifest.json"}
    expected = reference(ingest_text(text, "book"))
    for suffix in OUTPUTS:
        produced = (tmp_path / "out" / f"book.{suffix}").read_bytes()
        assert produced == (expected / f"book.{suffix}").read_bytes(), suffix
