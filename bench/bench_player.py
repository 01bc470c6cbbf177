"""Benchmark the web page's player on a Moby-Dick-sized book, in Chromium.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_player.py [BOOK] [--seeks 60]

The book (default ../shared/corpus/moby-dick.epub: 139 chapters, about
214 000 words) is ingested as ttsbatch ingests it; its words (ttsbatch's own
word spans) get synthetic times (70 ms a character, 1.5 s between chapters:
about a day of audio). A real API process (sign-in, pages, cookie auth, a job
of the tenant) serves the page, and the job's player resources, at the
contract's URLs (``/v1/jobs/{id}``, ``…/documents``, ``…/chapters/{i}``, the
document's audio), from that fixture; the audio is a silent 8 kHz WAV of the
whole length, generated for whatever byte range the browser asks. So what is
measured is the page: the DOM it keeps, how long a chapter takes from a click
to its words on screen, and how long the highlight takes per frame while
playing (at 4x speed, muted) and per seek while paused (half of them into
another chapter, which the page must find and load).

Measured in the page: frame times by requestAnimationFrame, long tasks (over
50 ms) and long animation frames by PerformanceObserver, DOM size by
``document.getElementsByTagName('*')``, render time from a click to the
frame after the chapter's last word is in the DOM.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import APIRouter, FastAPI, Request, Response  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from scheduler.api import create_app  # noqa: E402
from scheduler.ingest import ingest_file  # noqa: E402
from ttsbatch.audio.words import word_spans  # noqa: E402
from ttsbatch.dev.services import LOOPBACK, RedisServer, free_port  # noqa: E402
from ttsbatch.settings import ApiSettings, Settings  # noqa: E402

KEY = "bench-key"
RATE = 8000  # the fixture's audio: 8 kHz, 8-bit unsigned mono, silent
SECONDS_PER_CHAR = 0.07
CHAPTER_PAUSE = 1.5


def book_fixture(path: Path) -> tuple[str, list[dict[str, Any]], float]:
    """Return the chapters' contract bodies (text, words, start, end) and the audio's length."""
    document = ingest_file(path)
    spans = word_spans(document.text)
    chapters = []
    clock = 0.0
    cursor = 0
    for chapter in document.chapters:
        start = clock
        words = []
        while cursor < len(spans) and spans[cursor][0] < chapter.char_end:
            a, b = spans[cursor]
            cursor += 1
            if a < chapter.char_start:
                continue
            length = (b - a) * SECONDS_PER_CHAR
            words.append(
                [
                    round(clock, 3),
                    round(clock + length, 3),
                    a - chapter.char_start,
                    b - chapter.char_start,
                ]
            )
            clock += length + 0.08
        chapters.append(
            {
                "index": chapter.index,
                "title": chapter.title,
                "final": True,
                "start": round(start, 3),
                "end": round(clock, 3),
                "text": document.text[chapter.char_start : chapter.char_end],
                "words": words,
            }
        )
        clock += CHAPTER_PAUSE
    return document.name, chapters, clock


def wav_header(samples: int) -> bytes:
    """A canonical WAV header of ``samples`` 8-bit mono samples at RATE."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + samples)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE, 1, 8)
        + b"data"
        + struct.pack("<I", samples)
    )


def fixture_routes(
    job_id: str, name: str, chapters: list[dict[str, Any]], length: float
) -> APIRouter:
    """The player's resources of one job, at the contract's URLs, from the fixture."""
    router = APIRouter()
    base = f"/v1/jobs/{job_id}"
    audio = f"{base}/files/{name}.wav"
    header = wav_header(int(length * RATE))
    size = len(header) + int(length * RATE)
    bodies = {c["index"]: json.dumps({**c, "audio": audio}).encode() for c in chapters}

    @router.get(base)
    def job() -> dict[str, Any]:
        return {
            "id": job_id, "name": name, "status": "succeeded", "error": None, "warning": None,
            "errors": [], "documents": [name], "tags": {}, "options": {}, "run_id": None,
            "webhook_url": None, "created_at": None, "started_at": None, "finished_at": None,
            "audio": {}, "usage": None,
            "progress": {"chunks_total": 1, "chunks_done": 1, "chunks_failed": 0,
                         "characters_total": 1, "characters_done": 1, "audio_seconds": length,
                         "eta_seconds": None},
        }  # fmt: skip

    @router.get(f"{base}/result")
    def result() -> dict[str, Any]:
        return {"id": job_id, "expires_in": None, "files": []}

    @router.get(f"{base}/documents")
    def documents() -> dict[str, Any]:
        refs = [
            {"index": c["index"], "title": c["title"], "ready": True,
             "url": f"{base}/documents/{name}/chapters/{c['index']}"}
            for c in chapters
        ]  # fmt: skip
        return {"documents": [{"name": name, "title": name, "status": "succeeded",
                               "duration": length, "audio": audio, "chapters": refs}]}  # fmt: skip

    @router.get(f"{base}/documents/{name}/chapters/{{index}}")
    def chapter(index: int) -> Response:
        return Response(bodies[index], media_type="application/json")

    @router.get(audio)
    def sound(request: Request) -> Response:
        first, last = 0, size - 1
        ranged = request.headers.get("range", "").removeprefix("bytes=")
        if ranged:
            a, _, b = ranged.partition("-")
            first, last = int(a), min(int(b) if b else size - 1, size - 1)

        def body() -> Iterator[bytes]:
            position = first
            while position <= last:
                end = min(last + 1, position + (1 << 16))
                if position < len(header):
                    yield header[position : min(end, len(header))]
                    position = min(end, len(header))
                    continue
                yield b"\x80" * (end - position)
                position = end

        headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1)}
        if ranged:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return StreamingResponse(body(), 206 if ranged else 200, headers, media_type="audio/wav")

    return router


def serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://{LOOPBACK}:{port}", server, thread


# Installed in the page before its scripts run: frame times, long tasks, long animation frames.
PROBE = """
window.__bench = { frames: [], longTasks: [], longFrames: [], recording: false };
const b = window.__bench;
let last = 0;
function frame(now) {
  if (b.recording && last) b.frames.push(now - last);
  last = now;
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
for (const [type, list] of [["longtask", b.longTasks], ["long-animation-frame", b.longFrames]]) {
  try {
    new PerformanceObserver(l => { if (b.recording) for (const e of l.getEntries()) list.push(e.duration); })
      .observe({ type, buffered: false });
  } catch (e) {}
}
"""


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"
        f" (n={len(ordered)})"
    )


def measure(url: str, job_id: str, chapters: list[dict[str, Any]], seeks: int) -> None:
    biggest = max(chapters, key=lambda c: len(c["words"]))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless=new", "--mute-audio",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=url)
        context.add_init_script(PROBE)
        page = context.new_page()
        page.goto("/ui/")
        page.fill("input[name=key]", KEY)
        page.click("button[type=submit]")
        page.wait_for_selector("#submit-form")

        started = time.perf_counter()
        page.goto(f"/ui/jobs/{job_id}")
        page.wait_for_function(
            "n => document.querySelectorAll('#text .w').length === n", arg=len(chapters[0]["words"])
        )
        print(
            f"page load to first chapter's words: {(time.perf_counter() - started) * 1000:.0f} ms"
        )

        renders = []
        elements = []
        for chapter in [
            chapters[1],
            chapters[2],
            biggest,
            chapters[len(chapters) // 2],
            chapters[-1],
        ]:
            took = page.evaluate(
                """async ([index, count]) => {
                    const t0 = performance.now();
                    document.querySelector(`#chapters button[data-index="${index}"]`).click();
                    while (document.querySelectorAll('#text .w').length !== count
                           || document.getElementById('chapter-title').textContent === '')
                        await new Promise(r => requestAnimationFrame(r));
                    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                    return performance.now() - t0;
                }""",
                [chapter["index"], len(chapter["words"])],
            )
            count = page.evaluate("document.getElementsByTagName('*').length")
            renders.append(took)
            elements.append(count)
            print(
                f"chapter {chapter['index']:>3} ({len(chapter['words']):>5} words):"
                f" click to words on screen {took:.0f} ms, DOM {count} elements"
            )
        total_words = sum(len(c["words"]) for c in chapters)
        print(
            f"book: {len(chapters)} chapters, {total_words} words; DOM at most {max(elements)} elements"
        )

        # Playback of the biggest chapter at 4x for 6 s: frame times, word changes.
        page.evaluate(
            """async index => {
                document.querySelector(`#chapters button[data-index="${index}"]`).click();
                await new Promise(r => setTimeout(r, 500));
            }""",
            biggest["index"],
        )
        played = page.evaluate(
            """async () => {
                const audio = document.getElementById('audio');
                let changes = 0;
                const seen = new MutationObserver(list => {
                    for (const m of list) if (m.target.getAttribute('aria-current') === 'true') changes++;
                });
                seen.observe(document.getElementById('text'), { subtree: true, attributeFilter: ['aria-current'] });
                const b = window.__bench;
                b.frames.length = b.longTasks.length = b.longFrames.length = 0;
                audio.playbackRate = 4;
                await audio.play();
                b.recording = true;
                await new Promise(r => setTimeout(r, 6000));
                b.recording = false;
                audio.pause();
                seen.disconnect();
                return { changes, frames: b.frames, longTasks: b.longTasks, longFrames: b.longFrames,
                         played: audio.currentTime };
            }"""
        )
        print(
            f"playing at 4x for 6 s: {played['changes']} highlight moves; frame intervals"
            f" {summary(played['frames'])}; long tasks {summary(played['longTasks'])};"
            f" long animation frames {summary(played['longFrames'])}"
        )

        # Seeks while paused: to a word of this chapter, or of another chapter.
        rng = random.Random(14)
        inside, across = [], []
        page.evaluate("window.__bench.recording = true")
        current = biggest
        for n in range(seeks):
            target = current if n % 2 == 0 else rng.choice(chapters)
            if not target["words"]:
                continue
            index = rng.randrange(len(target["words"]))
            start, end = target["words"][index][:2]
            took = page.evaluate(
                """async ([time, index, title]) => {
                    const audio = document.getElementById('audio');
                    const t0 = performance.now();
                    audio.currentTime = time;
                    for (;;) {
                        const marked = document.querySelectorAll('#text [aria-current="true"]');
                        if (marked.length === 1 && Number(marked[0].dataset.i) === index
                            && document.getElementById('chapter-title').textContent === title) break;
                        await new Promise(r => requestAnimationFrame(r));
                    }
                    return performance.now() - t0;
                }""",
                [(start + end) / 2, index, target["title"]],
            )
            (inside if target is current else across).append(took)
            current = target
        probe = page.evaluate("window.__bench")
        print(f"seek while paused, same chapter: {summary(inside)}")
        print(f"seek while paused, into another chapter (found, loaded, shown): {summary(across)}")
        print(f"during the seeks: long tasks {summary(probe['longTasks'])}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/moby-dick.epub"
    )
    parser.add_argument("--seeks", type=int, default=60)
    args = parser.parse_args()
    name, chapters, length = book_fixture(args.book)
    print(f"{args.book.name}: {len(chapters)} chapters, {sum(len(c['words']) for c in chapters)} words,"
          f" {length / 3600:.1f} h of (silent) audio")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as redis:
        settings = Settings(
            store=str(Path(folder) / "store"),
            redis_url=redis.url,
            api=ApiSettings(keys=SecretStr(KEY), require_workers=False),
        )
        app = create_app(settings)
        url, server, thread = serve(app)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api:
                job = api.post("/v1/jobs", json={"input": "A placeholder.", "name": name})
                job.raise_for_status()
                job_id = job.json()["id"]
            # Ahead of the app's own routes: this job's resources come from the fixture.
            app.router.routes[:0] = fixture_routes(job_id, name, chapters, length).routes
            measure(url, job_id, chapters, args.seeks)
        finally:
            server.should_exit = True
            thread.join(10)


if __name__ == "__main__":
    main()
