"""Speech engines behind one small interface.

An engine turns the text of one chunk into mono s16le PCM at a sample rate it
knows, plus word timings mapped onto that text. Engines classify their own
failures (:mod:`ttsbatch.errors`) but never retry: retries live in the task
layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ttsbatch.models import TimingSource, WordTiming


@dataclass(frozen=True, slots=True)
class Synthesis:
    """The audio of one chunk.

    Attributes:
        pcm: Mono signed 16-bit little-endian samples.
        sample_rate: Samples per second of ``pcm``.
        words: Word timings; character offsets into the chunk's text, sample
            offsets into ``pcm``.
        timing: Where the word timings came from.
    """

    pcm: bytes
    sample_rate: int
    words: tuple[WordTiming, ...]
    timing: TimingSource

    @property
    def samples(self) -> int:
        """Number of samples in ``pcm``."""
        return len(self.pcm) // 2


StopCheck = Callable[[], bool]
"""Called between stream events; returning True abandons the request."""


class Engine(Protocol):
    """A speech engine: one instance per process (or per thread, if it allows)."""

    name: str
    default_max_chars: int

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        """Speak ``text`` and return its audio and word timings.

        Raises:
            ttsbatch.errors.EngineError: classified as retryable or permanent.
        """
        ...

    def close(self) -> None:
        """Release connections or native resources."""
        ...
