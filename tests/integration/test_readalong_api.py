"""A read-along job through the API: real HTTP, Redis, SeaweedFS, a beat, a worker, the imitation provider.

An EPUB uploaded with ``read_along: true`` is kept in the store when the beat
plans the job (with the map of where its text lies), and the worker's
finalize writes ``<name>.epub`` beside the audio: the job's result files
include it, its overlays point into the EPUB's own XHTML, and every clip is
one of the timeline's word starts.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from scheduler.api import create_app
from tests.scheduler.test_ingest_epub import epub3_with_nav_and_footnotes
from ttsbatch.client import ApiClient
from ttsbatch.settings import ApiSettings

from .conftest import OPTIONS, Harness
from .test_api_end_to_end import beat, serve, wait_for_workers

pytestmark = pytest.mark.integration

KEY = "readalong-key"


def test_a_job_with_read_along_yields_the_epub_in_its_result_files(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    source = tmp_path / "book.epub"
    source.write_bytes(epub3_with_nav_and_footnotes())
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))})
    engine = OPTIONS.engine
    with (
        beat(harness),
        serve(create_app(settings, store=harness.store)) as url,
        ApiClient(url, KEY) as api,
    ):
        job = api.submit_files(
            [source],
            engine=engine.engine,
            model=engine.model,
            voice=engine.voice,
            max_chars=OPTIONS.max_chars,
            read_along=True,
        )
        final = list(api.events(job["id"]))[-1][1]
        assert final["status"] == "succeeded", final
        assert final["options"]["read_along"] is True
        written = {path.name: path for path in api.download(job["id"], tmp_path / "out")}
    assert {"book.epub", "book.wav", "book.timestamps.json"} <= set(written)
    with zipfile.ZipFile(written["book.epub"]) as book:
        assert book.namelist()[0] == "mimetype"
        names = set(book.namelist())
        assert {"OEBPS/text/part 1.xhtml", "OEBPS/nav.xhtml", "OEBPS/readalong/book.mp3"} <= names
        smil = b"".join(book.read(name) for name in sorted(names) if name.endswith(".smil"))
        chapter = book.read("OEBPS/text/part 1.xhtml").decode()
    assert 'id="ra-s1"' in chapter and "part%201.xhtml#ra-s1" in smil.decode()
    timeline = json.loads(written["book.timestamps.json"].read_text())
    starts = {round(word["start"] * 1_000_000) for word in timeline["words"]}
    begins = [part.split('"')[0] for part in smil.decode().split('clipBegin="')[1:]]
    assert begins
    for begin in begins:
        hours, minutes, seconds = begin.split(":")
        whole, fraction = seconds.split(".")
        micros = ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 1_000_000 + int(fraction)
        assert micros in starts, begin
