"""Benchmark the web page's player on a Moby-Dick-sized book, in Chromium, through the real API.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_player.py [BOOK] [--seeks 60]

The book (default ../shared/corpus/moby-dick.epub: 139 chapters, about
214 000 words) is submitted to a real API process (a throwaway Redis, a local
store; planned as the beat would) and finished without speech, as
``bench/bench_chapters.py`` does it: each chunk gets a worker's record (70 ms
a character, its words timed in proportion) and the timestamps file is written
by the stitch's own writers. The finished audio is a silent WAV of the whole
length (about a day at 24 kHz) written as a sparse file, so no disk fills.
The browser signs in and opens the job's player, which reads everything
through the real routes: the documents list, each chapter's resource, and the
audio with byte ranges (``/v1/jobs/{id}/files/{name}``).

Measured in the page: the DOM it keeps (``document.getElementsByTagName('*')``),
how long a chapter takes from a click to its words on screen (to the frame
after the last word is in the DOM), frame times by requestAnimationFrame, long
tasks (over 50 ms) and long animation frames by PerformanceObserver while
playing (at 4x speed, muted), and how long a seek while paused takes until the
right word is marked (half of them into another chapter, which the page must
find by binary search over chapter starts, fetch and render).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import subprocess
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
from bench_chapters import (  # noqa: E402 - how a job is finished unspoken
    finish,
    planning_app,
    store_records,
)
from fastapi import FastAPI  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from ttsbatch import keys  # noqa: E402
from ttsbatch.audio.wav import wav_header  # noqa: E402
from ttsbatch.dev.services import LOOPBACK, RedisServer, free_port  # noqa: E402
from ttsbatch.dev.stack import stop_process, ttsbatch_command  # noqa: E402
from ttsbatch.manifests import read_manifest  # noqa: E402
from ttsbatch.settings import Settings  # noqa: E402
from ttsbatch.storage.local import LocalStore  # noqa: E402

KEY = "bench-key"


def finished_book(book: Path, url: str, app: FastAPI, store: LocalStore) -> str:
    """Submit ``book`` to the API at ``url`` and finish it unspoken; return the job's id."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as api:
        files = {"files": (book.name, book.read_bytes())}
        answer = api.post("/v1/jobs", files=files, data={"engine": "espeak"})
        answer.raise_for_status()
    job_id: str = answer.json()["id"]
    manifest = read_manifest(store, job_id)
    (plan,) = manifest.documents
    text = store.read(keys.output_key(job_id, plan.doc, "source.txt")).decode()
    services = app.state.services
    store_records(services, manifest, text, slice(None))
    finish(services, manifest, text)
    # The finished audio: a WAV header, then silence as a sparse file of the timeline's length.
    outputs = keys.document_outputs(job_id, plan.doc, "wav")
    with store.open_read(outputs["timestamps"]) as head:
        found = re.search(rb'"sample_rate":\s*(\d+).*?"duration":\s*([\d.]+)', head.read(4096))
    assert found, "the timestamps file starts with its sample rate and duration"
    rate, duration = int(found[1]), float(found[2])
    samples = round(rate * duration)
    path = store.path(outputs["audio"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as audio:
        audio.write(wav_header(samples, rate))
        audio.truncate(len(wav_header(samples, rate)) + 2 * samples)
    print(
        f"{book.name}: {len(plan.chunks)} chunks, {duration / 3600:.1f} h of (silent) audio,"
        f" planned and finished in {time.perf_counter() - started:.1f} s"
    )
    return job_id


def serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve ``app`` in a thread of this process (to make the job); return its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://{LOOPBACK}:{port}", server, thread


@contextlib.contextmanager
def api_process(settings: Settings, log: Path) -> Iterator[str]:
    """Run ``ttsbatch api`` on the same store and Redis, as deployed: its own process."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSBATCH_")}
    env.update(
        REDIS_URL=settings.redis_url, TTSBATCH_STORE=str(settings.store), TTSBATCH_API_KEYS=KEY
    )
    with log.open("ab") as sink:
        process = subprocess.Popen(
            ttsbatch_command("api", "--host", LOOPBACK, "--port", str(port)),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"ttsbatch api did not start: see {log}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        stop_process(process, 20)


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
        fetches = page.evaluate(
            """() => performance.getEntriesByType('resource')
                .filter(e => /\\/chapters\\/\\d+$/.test(e.name)).map(e => e.duration)"""
        )
        print(f"chapter resources fetched by the page: {summary(fetches)}")
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
        inside: list[float] = []
        across: list[float] = []
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
        fetches = page.evaluate(
            """() => performance.getEntriesByType('resource')
                .filter(e => /\\/chapters\\/\\d+$/.test(e.name)).map(e => e.duration)"""
        )
        print(f"chapter resources fetched in all: {summary(fetches)}")
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
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as redis:
        store, settings, app = planning_app(Path(folder), redis.url)
        url, server, thread = serve(app)
        try:
            job_id = finished_book(args.book, url, app, store)
        finally:
            server.should_exit = True
            thread.join(10)
        # The page is measured against `ttsbatch api` in a process of its own, as deployed.
        with api_process(settings, Path(folder) / "api.log") as url:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api:
                (document,) = api.get(f"/v1/jobs/{job_id}/documents").json()["documents"]
                chapters = [api.get(ref["url"]).json() for ref in document["chapters"]]
                took = []
                for ref in document["chapters"]:
                    started = time.perf_counter()
                    api.get(ref["url"]).raise_for_status()
                    took.append((time.perf_counter() - started) * 1000)
            print(f"chapter resources fetched by a client, warm: {summary(took)}")
            words = sum(len(chapter["words"]) for chapter in chapters)
            print(f"served: {len(chapters)} chapters, {words} words")
            measure(url, job_id, chapters, args.seeks)


if __name__ == "__main__":
    main()
