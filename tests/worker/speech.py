"""What the engines must make of the imitation provider's answers: shared by the engine tests."""

from __future__ import annotations

from ttsbatch.audio.words import word_spans
from ttsbatch.dev.fakeprovider import Fault, expected_audio
from ttsbatch.errors import (
    AuthenticationError,
    EngineError,
    PermanentEngineError,
    QuotaExceededError,
    RateLimitedError,
    RetryableEngineError,
)
from ttsbatch.models import WordTiming

TEXT = "Hello there, world. How are you? Fine, thanks!"

# fault -> (exact exception class, retry_after the client reads: None, a number, or "log")
FAULTS: dict[Fault, tuple[type[EngineError], object]] = {
    Fault.RATE_LIMIT_MS: (RateLimitedError, 0.2),
    Fault.RATE_LIMIT_SECONDS: (RateLimitedError, 1.0),
    Fault.RATE_LIMIT_DATE: (RateLimitedError, "log"),
    Fault.RATE_LIMIT_RESET: (RateLimitedError, 0.2),
    Fault.RATE_LIMIT_BARE: (RateLimitedError, None),
    Fault.OLD_RATE_LIMIT: (RateLimitedError, None),
    Fault.UNAVAILABLE: (RetryableEngineError, None),
    Fault.HTML_500: (RetryableEngineError, None),
    Fault.TRUNCATE: (RetryableEngineError, None),
    Fault.ABORT: (RetryableEngineError, None),
    Fault.ERROR_EVENT: (RetryableEngineError, None),
    Fault.STALL: (RetryableEngineError, None),
    Fault.MALFORMED: (RetryableEngineError, None),
    Fault.UNAUTHORIZED: (AuthenticationError, None),
    Fault.PAYMENT_REQUIRED: (QuotaExceededError, None),
    Fault.UNKNOWN_VOICE: (PermanentEngineError, None),
    Fault.INSUFFICIENT_QUOTA: (QuotaExceededError, None),
}


def expected_words(text: str, sample_rate: int = 24_000) -> tuple[WordTiming, ...]:
    """Return the word times the imitation provider sends for ``text``, on the text's spans."""
    _, words = expected_audio(text, sample_rate)
    return tuple(
        WordTiming(text=word, char_start=a, char_end=b, start=start, end=end)
        for (word, start, end), (a, b) in zip(words, word_spans(text), strict=True)
    )
