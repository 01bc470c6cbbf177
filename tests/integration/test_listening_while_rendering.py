"""Listen while it renders: a running job's finished chapters play before the job ends.

A real worker process, SeaweedFS, Redis and the imitation provider, which
holds back every request of the book's last chapter (its ``hold`` option)
until the test has listened to the first: that chapter's audio answers a
range request with WAV bytes and its resource says it is ready while the job
still runs. Released, the job finishes and the chapter becomes ``final``. The
API is served over real HTTP; it plans the job itself, as the beat would.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from tests.scheduler.api.conftest import plan_here
from ttsbatch.settings import ApiSettings

from .conftest import OPTIONS, Harness, wait_for
from .test_api_end_to_end import serve, wait_for_workers

pytestmark = pytest.mark.integration

KEY = "listening-key"
#: Every sentence of the last chapter says "zebra": the provider holds those requests.
BOOK = """CHAPTER I. Morning

The sun came up over the hills. A dog barked twice. The farmer went out.

CHAPTER II. Noon

The field was hot and dry. Nobody spoke at lunch. The bell rang once.

CHAPTER III. Night

A zebra stood by the gate. The zebra did not move. Then the zebra slept.
"""


def held_stack(make_harness: Callable[..., Harness], key: str) -> tuple[Harness, FastAPI]:
    """A worker, and an API that plans in process (its key ``key``), in front of a provider
    that holds every request saying "zebra" until released."""
    harness = make_harness(hold=r"\bzebra\b", hold_timeout=60)
    # Held requests wait longer than the fast timeouts' 3 s read timeout: give them 60.
    harness.workers.start(1, TTSBATCH_PROVIDER_TIMEOUT="60")
    wait_for_workers(harness, 1)
    settings = harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(key))})
    return harness, plan_here(create_app(settings, store=harness.store))


def test_a_running_jobs_finished_chapter_plays_before_the_job_ends(
    make_harness: Callable[..., Harness],
) -> None:
    harness, app = held_stack(make_harness, KEY)
    engine = OPTIONS.engine
    with (
        serve(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api,
    ):
        body = {
            "input": BOOK,
            "name": "book",
            "engine": engine.engine,
            "model": engine.model,
            "voice": engine.voice,
            "max_chars": 80,
        }
        answer = api.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        listing = f"/v1/jobs/{job_id}/documents"

        def first_ready_and_last_held() -> dict[str, object] | None:
            documents = api.get(listing).raise_for_status().json()["documents"]
            if not documents or harness.provider.state.held() < 1:
                return None
            chapters = documents[0]["chapters"]
            return documents[0] if chapters[0]["ready"] and chapters[1]["ready"] else None

        document = wait_for(
            first_ready_and_last_held,
            timeout=20,
            what="chapter I to be ready while chapter III is held",
            explain=lambda: harness.explain(job_id),
        )
        assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        assert document["status"] == "running" and document["audio"] is None
        chapters = document["chapters"]
        assert [c["title"] for c in chapters] == [
            "CHAPTER I. Morning",
            "CHAPTER II. Noon",
            "CHAPTER III. Night",
        ]
        assert chapters[2]["ready"] is False
        assert api.get(chapters[2]["url"]).status_code == 409

        chapter = api.get(chapters[0]["url"]).raise_for_status().json()
        assert chapter["final"] is False and chapter["words"]
        assert chapter["text"].startswith("CHAPTER I. Morning")
        head = api.get(chapter["audio"], headers={"Range": "bytes=0-1023"})
        assert head.status_code == 206 and head.headers["content-type"] == "audio/wav"
        assert head.content[:4] == b"RIFF" and head.content[8:12] == b"WAVE"
        size = int(head.headers["content-range"].rpartition("/")[2])
        whole = api.get(chapter["audio"])
        assert len(whole.content) == size and whole.content[:1024] == head.content
        with wave.open(io.BytesIO(whole.content)) as audio:
            assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
            rate = audio.getframerate()
            assert audio.getnframes() / rate == pytest.approx(chapter["end"], abs=1e-5)
        assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "running"

        harness.provider.state.release()

        def succeeded() -> bool:
            return bool(api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded")

        wait_for(
            succeeded,
            timeout=30,
            what="the job to succeed",
            explain=lambda: harness.explain(job_id),
        )
        final = api.get(chapters[0]["url"]).raise_for_status().json()
        assert final["final"] is True and final["audio"] == f"/v1/jobs/{job_id}/files/book.wav"
        assert [w[2:] for w in final["words"]] == [w[2:] for w in chapter["words"]]
        assert final["words"][-1][1] == pytest.approx(
            chapter["words"][-1][1] + final["start"], abs=2e-6
        )
        stitched = api.get(final["audio"], headers={"Range": f"bytes=44-{size - 1}"})
        assert stitched.status_code == 206
        start = round(final["start"] * rate)
        assert start == 0 and stitched.content == whole.content[44:]  # chapter I opens the book
