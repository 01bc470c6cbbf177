"""Listen while it renders, in the page: a running job's ready chapter plays in Chromium.

The imitation provider holds every request of the book's last chapter (its
``hold`` option) while the test listens to the first in the player: the
chapter list says which chapters are ready, the first plays from its preview
(the chapter's own WAV, read by byte ranges) with its words following the
audio, and the held one cannot be chosen. Released, the job succeeds on the
page, its downloads appear, and the chapter now plays from the finished file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import OPTIONS, Harness
from tests.integration.test_api_end_to_end import serve
from tests.integration.test_listening_while_rendering import held_stack

pytestmark = pytest.mark.integration

KEY = "listening-browser-key"
#: Every sentence of the last chapter says "zebra": the provider holds those requests.
BOOK = """CHAPTER I. Morning

The sun came up over the hills. A dog barked twice. The farmer went out to the field.

CHAPTER II. Noon

The field was hot and dry. Nobody spoke at lunch. The bell rang once.

CHAPTER III. Night

A zebra stood by the gate. The zebra did not move. Then the zebra slept.
"""
STEP_MS = 30_000


def current_word(page: Any) -> int:
    """The index of the one word marked aria-current="true"."""
    marked = page.eval_on_selector_all(
        '#text [aria-current="true"]', "nodes => nodes.map(n => Number(n.dataset.i))"
    )
    assert len(marked) == 1
    return int(marked[0])


def test_a_ready_chapter_plays_in_the_page_before_the_job_ends(
    browser: Any, make_harness: Callable[..., Harness], screenshots: Path
) -> None:
    harness, app = held_stack(make_harness, KEY)
    engine = OPTIONS.engine
    with (
        serve(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api,
    ):
        body = {"input": BOOK, "name": "book", "max_chars": 80, **engine.model_dump()}
        answer = api.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]

        context = browser.new_context(base_url=url)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"/ui/jobs/{job_id}")  # signed out: the form, then back to the player
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/ui/jobs/{job_id}")

            # Chapter I is shown and playable while chapter III is still rendering.
            page.wait_for_selector("#text .w", timeout=STEP_MS)
            assert page.inner_text("#chapter-title") == "CHAPTER I. Morning"
            held = page.locator('#chapters button[data-index="2"]')
            page.wait_for_function(
                "() => document.querySelector('#chapters button[data-index=\"2\"]')?.disabled",
                timeout=STEP_MS,
            )
            assert "rendering" in held.inner_text()
            assert page.text_content("#job-status") == "running"
            source = page.evaluate("document.getElementById('audio').currentSrc")
            assert source.endswith(f"/v1/jobs/{job_id}/documents/book/chapters/0/audio")

            # It plays, and the highlight follows the audio past the first words.
            page.evaluate("document.getElementById('audio').play()")
            page.wait_for_function(
                """() => {
                    const audio = document.getElementById('audio');
                    const marked = document.querySelectorAll('[aria-current="true"]');
                    return !audio.paused && audio.currentTime > 1 && marked.length === 1
                        && Number(marked[0].dataset.i) > 2;
                }""",
                timeout=STEP_MS,
            )
            page.evaluate("document.getElementById('audio').pause()")
            page.screenshot(path=str(screenshots / "player-rendering.png"), full_page=True)
            assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "running"

            # Released, the job succeeds on the page; the chapter then plays from the finished file.
            harness.provider.state.release()
            page.wait_for_selector("#job-status:has-text('succeeded')", timeout=STEP_MS)
            page.wait_for_selector("#downloads a:has-text('book.wav')", timeout=STEP_MS)
            # The chapter shown moves from its preview to the finished file, at the same word.
            marked = current_word(page)
            page.wait_for_function(
                "() => document.getElementById('audio').currentSrc.endsWith('/files/book.wav')",
                timeout=STEP_MS,
            )
            assert page.inner_text("#chapter-title") == "CHAPTER I. Morning"
            assert current_word(page) == marked
            page.wait_for_function(
                "() => !document.querySelector('#chapters button[data-index=\"2\"]').disabled",
                timeout=STEP_MS,
            )
            page.click('#chapters button[data-index="2"]')
            page.wait_for_function(
                "() => document.getElementById('chapter-title').textContent === 'CHAPTER III. Night'",
                timeout=STEP_MS,
            )
            source = page.evaluate("document.getElementById('audio').currentSrc")
            assert source.endswith(f"/v1/jobs/{job_id}/files/book.wav")
            assert errors == []
        finally:
            context.close()  # before the server stops: no event stream left open
