"""One chunk's synthesis: the plausibility check every engine's audio goes through."""

from __future__ import annotations

import pytest

from ttsbatch.errors import RetryableEngineError
from ttsbatch.models import TimingSource
from worker.engines import StopCheck, Synthesis
from worker.synthesis import check_plausible, synthesize_record


class Fixed:
    """An engine that answers every text with ``samples`` samples of silence."""

    name = "fixed"
    default_max_chars = 100

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        return Synthesis(bytes(2 * self.samples), 1000, (), TimingSource.NONE)


def test_no_audio_or_absurdly_short_audio_is_a_retryable_failure() -> None:
    with pytest.raises(RetryableEngineError, match=r"fixed returned 0\.000 s of audio for 10"):
        check_plausible(0, 24_000, "Hello world", engine="fixed", index=3)
    with pytest.raises(RetryableEngineError, match="too short to be speech") as caught:
        check_plausible(240, 24_000, "Hello world", engine="fixed", index=3)
    assert caught.value.chunk_index == 3
    check_plausible(24_000, 24_000, "Hello world", engine="fixed", index=3)
    check_plausible(0, 24_000, "...", engine="fixed", index=3)  # nothing to speak


def test_every_engine_s_result_is_checked_before_it_becomes_a_record() -> None:
    with pytest.raises(RetryableEngineError, match="too short"):
        synthesize_record(Fixed(50), index=0, text="Hello world")  # type: ignore[arg-type]
    record, pcm = synthesize_record(Fixed(500), index=7, text="Hello world")  # type: ignore[arg-type]
    assert (record.index, record.samples, record.engine, len(pcm)) == (7, 500, "fixed", 1000)
