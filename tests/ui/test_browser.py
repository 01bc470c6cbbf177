"""The web page in a real browser, against a real API, beat, worker and imitation provider.

Chromium signs in with a key (a password field), submits a Markdown book of
two chapters through the form, watches it reach ``succeeded`` on the jobs
page, opens the player, and checks the read-along: a seek while paused marks
exactly the word spoken there (also in another chapter than the one shown),
a click on a word moves the audio to its start, playing across a chapter's end
shows the next chapter's words. Another tenant's job is a 404,
on the page and through the API; the key is in no URL the browser loaded.
A running job is cancelled and retried with the jobs page's buttons.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from scheduler.api import create_app
from tests.integration.conftest import OPTIONS, Harness
from tests.integration.test_api_end_to_end import beat, serve, wait_for_workers
from ttsbatch.settings import ApiSettings

pytestmark = pytest.mark.integration

KEY = "browser-key-7f3a"
OTHER_KEY = "other-tenant-key"
BOOK = """# The Keeper

The lighthouse on Gull Rock had not missed a night in ninety years. Its keeper meant
to keep it that way. Every evening she climbed the hundred and twelve steps.

She trimmed the wick and wound the clockwork.

# The Storm

In the third week of November the barometer fell faster than she had ever seen it fall.
By noon the sea had turned the colour of slate. The lamp had to burn.
"""
#: Seconds a step in the page may take (the job itself: about two).
STEP_MS = 30_000


def current_words(page: Any) -> list[int]:
    """Indexes of the words marked aria-current="true" in the text shown."""
    return page.eval_on_selector_all(
        '#text [aria-current="true"]', "nodes => nodes.map(n => Number(n.dataset.i))"
    )


def wait_for_current(page: Any, index: int) -> None:
    page.wait_for_function(
        """index => {
            const marked = document.querySelectorAll('[aria-current="true"]');
            return marked.length === 1 && Number(marked[0].dataset.i) === index;
        }""",
        arg=index,
        timeout=STEP_MS,
    )


def seek(page: Any, seconds: float) -> None:
    """Set the audio's currentTime while it is paused, as a listener dragging the bar does."""
    page.evaluate(
        """seconds => { const a = document.getElementById('audio'); a.pause(); a.currentTime = seconds; }""",
        seconds,
    )


def test_sign_in_submit_listen_and_follow_the_words_in_chromium(
    browser: Any,
    make_harness: Callable[..., Harness],
    screenshots: Path,
    tmp_path: Path,
) -> None:
    harness = make_harness()
    harness.workers.start(1)
    wait_for_workers(harness, 1)
    keys = SecretStr(f"{KEY},{OTHER_KEY}")
    app = create_app(
        harness.settings.model_copy(update={"api": ApiSettings(keys=keys)}), store=harness.store
    )
    book = tmp_path / "gull-rock.md"
    book.write_text(BOOK, encoding="utf-8")
    engine = OPTIONS.engine
    with beat(harness), serve(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=url)
        urls: list[str] = []
        context.on("request", lambda request: urls.append(request.url))
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            # Sign in: a password field, the key in a POST body, a session cookie.
            page.goto("/ui/")
            assert page.get_attribute("input[name=key]", "type") == "password"
            page.fill("input[name=key]", "not-the-key")
            page.click("button[type=submit]")
            assert "not one of this server" in page.inner_text(".error")
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.wait_for_selector("#submit-form")
            assert page.evaluate("document.cookie") == ""  # HttpOnly: no script sees the key

            # Submit the book through the form; watch it succeed on the page.
            page.set_input_files("#f-files", str(book))
            page.fill("#f-name", "gull-rock")
            page.select_option("#f-engine", str(engine.engine))
            page.fill("#f-model", str(engine.model))
            page.fill("#f-voice", str(engine.voice))
            page.click("#f-estimate")
            page.wait_for_selector("#f-result:has-text('Estimate')", timeout=STEP_MS)
            page.click("#f-submit")
            page.wait_for_selector("#f-result:has-text('Accepted')", timeout=STEP_MS)
            page.wait_for_selector('li.job[data-status="succeeded"]', timeout=60_000)
            job_id = page.get_attribute("li.job", "data-id")
            assert job_id
            page.screenshot(path=str(screenshots / "jobs.png"), full_page=True)

            # The player: chapters, and the first chapter's words.
            page.click("li.job >> text=Listen")
            page.wait_for_url(f"**/ui/jobs/{job_id}")
            page.wait_for_selector("#text .w", timeout=STEP_MS)
            titles = page.locator("#chapters button .chapter-name").all_inner_texts()
            assert titles == ["The Keeper", "The Storm"]
            chapters = page.evaluate(
                "url => fetch(url).then(r => r.json())",
                f"/v1/jobs/{job_id}/documents",
            )["documents"][0]["chapters"]
            first, second = (
                page.evaluate("url => fetch(url).then(r => r.json())", chapter["url"])
                for chapter in chapters
            )
            assert first["final"] and second["final"] and first["audio"] == second["audio"]
            assert page.locator("#text .w").count() == len(first["words"])

            # A seek while paused marks exactly the word spoken there.
            index = len(first["words"]) // 2
            start, end = first["words"][index][:2]
            seek(page, (start + end) / 2)
            wait_for_current(page, index)

            # Another chapter: from the list, then a click on one of its words seeks there.
            page.click("#chapters button:has-text('The Storm')")
            page.wait_for_function(
                "n => document.querySelectorAll('#text .w').length === n",
                arg=len(second["words"]),
                timeout=STEP_MS,
            )
            assert page.inner_text("#chapter-title") == "The Storm"
            word = 5
            page.click(f'#text .w[data-i="{word}"]')
            wait_for_current(page, word)
            position = page.evaluate("document.getElementById('audio').currentTime")
            assert abs(position - second["words"][word][0]) < 0.01
            page.screenshot(path=str(screenshots / "player.png"), full_page=True)

            # A seek into the first chapter, while the second is shown, brings the first back.
            start, end = first["words"][3][:2]
            seek(page, (start + end) / 2)
            page.wait_for_function(
                "() => document.getElementById('chapter-title').textContent === 'The Keeper'",
                timeout=STEP_MS,
            )
            wait_for_current(page, 3)
            assert current_words(page) == [3]

            # Playing across the end of the first chapter shows the second, its words marked.
            seek(page, first["words"][-1][0])
            page.evaluate(
                "() => { const a = document.getElementById('audio'); a.playbackRate = 2; a.play(); }"
            )
            page.wait_for_function(
                """() => document.getElementById('chapter-title').textContent === 'The Storm'
                    && document.querySelectorAll('[aria-current="true"]').length === 1""",
                timeout=STEP_MS,
            )
            page.evaluate("document.getElementById('audio').pause()")
            assert page.locator("#text .w").count() == len(second["words"])

            # Another tenant's job: a 404 page, and a 404 from the API with this session.
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
            ) as api:
                other = api.post("/v1/jobs", json={"input": "Not yours.", **engine.model_dump()})
                assert other.status_code == 202, other.text
                other_id = other.json()["id"]
            answer = page.goto(f"/ui/jobs/{other_id}")
            assert answer is not None and answer.status == 404
            assert "No such job" in page.inner_text("h1")
            assert page.request.get(f"/v1/jobs/{other_id}").status == 404
            assert page.request.get(f"/v1/jobs/{other_id}/documents").status == 404

            # Signed out, a player link asks for the key, then comes back to the player.
            page.goto("/ui/")
            page.click("text=Sign out")
            page.wait_for_selector("input[name=key]")
            page.goto(f"/ui/jobs/{job_id}")
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/ui/jobs/{job_id}")

            assert urls and not [u for u in urls if KEY in u]
            assert errors == []
        finally:
            context.close()  # before the server stops: no event stream left open


def test_a_job_is_cancelled_and_retried_from_the_jobs_page(
    browser: Any, make_harness: Callable[..., Harness]
) -> None:
    # The provider holds the job's requests, so it is still running when Cancel is pressed.
    harness = make_harness(hold=r"\bheron\b", hold_timeout=60)
    harness.workers.start(1, TTSBATCH_PROVIDER_TIMEOUT="60")
    wait_for_workers(harness, 1)
    app = create_app(
        harness.settings.model_copy(update={"api": ApiSettings(keys=SecretStr(KEY))}),
        store=harness.store,
    )
    engine = OPTIONS.engine
    with beat(harness), serve(app) as url:
        context = browser.new_context(base_url=url)
        try:
            page = context.new_page()
            page.goto("/ui/")
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.fill("#f-input", "A heron stood in the reeds. The heron waited.")
            page.select_option("#f-engine", str(engine.engine))
            page.fill("#f-model", str(engine.model))
            page.fill("#f-voice", str(engine.voice))
            page.click("#f-submit")
            job = page.locator("li.job").first
            page.wait_for_selector('li.job[data-status="running"]', timeout=STEP_MS)

            job.locator("button[data-action=cancel]").click()  # DELETE, with the cookie
            page.wait_for_selector('li.job[data-status="cancelled"]', timeout=STEP_MS)
            assert job.locator("button[data-action=cancel]").count() == 0

            job.locator("button[data-action=retry]").click()  # POST …/retry, with the cookie
            page.wait_for_selector('li.job[data-status="running"]', timeout=STEP_MS)
            harness.provider.state.release()
            page.wait_for_selector('li.job[data-status="succeeded"]', timeout=STEP_MS)
        finally:
            context.close()
