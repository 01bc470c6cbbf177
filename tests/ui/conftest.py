"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and a real stack.

Playwright's Python package drives the system's Chromium (``/usr/bin/chromium``,
Debian's ``chromium``, which ``.ci/run`` installs): no browser is downloaded.
Without it the tests skip, saying why, except under CI (``CI=true``), where a
missing browser is a failure: a broken install must not pass silently.

Screenshots of the pages go to ``$TTSBATCH_SCREENSHOTS`` if set, else to
``screenshots/`` in pytest's temporary folder; the run's summary names it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The integration tests' cluster: Redis, SeaweedFS, workers, the imitation provider.
from tests.integration.conftest import make_harness, own_redis  # noqa: F401 - fixtures

CHROMIUM = Path("/usr/bin/chromium")
#: Flags of a headless Chromium in a container (no sandbox: CI runs as root); muted, and
#: allowed to play without a click (the tests press play from a script).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
]

_screenshots: list[Path] = []


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``) for a module.

    Not for the session: Playwright's sync API keeps an event loop running in
    the main thread until it stops, and tests after it that call
    ``asyncio.run`` (the API's middleware tests) would fail.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser tests must run in CI, but {reason}")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the tests write their screenshots to."""
    configured = os.environ.get("TTSBATCH_SCREENSHOTS")
    folder = Path(configured) if configured else tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    _screenshots.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the screenshots are."""
    for folder in _screenshots:
        shots = sorted(p.name for p in folder.glob("*.png"))
        if shots:
            terminalreporter.write_line(f"browser screenshots in {folder}: {', '.join(shots)}")
