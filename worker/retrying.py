"""When to try a failed chunk again: a pure policy shared by every executor.

Engines classify failures; this module turns a classification into a delay.
The server's suggested delay wins; otherwise exponential backoff with full
jitter, capped (the AWS Architecture Blog's "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ttsbatch.errors import FatalEngineError, RetryableEngineError, TransientStorageError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one chunk."""

    max_attempts: int = 8
    base: float = 0.5
    cap: float = 60.0

    def delay(
        self, attempt: int, exc: BaseException, rng: random.Random | None = None
    ) -> float | None:
        """Return seconds to wait before attempt ``attempt + 1``, or None to give up.

        Args:
            attempt: How many attempts have failed so far (1 after the first).
            exc: The failure of the last attempt.
            rng: Source of jitter (tests pass a seeded one).
        """
        if isinstance(exc, FatalEngineError) or attempt >= self.max_attempts:
            return None
        if not isinstance(exc, RetryableEngineError | TransientStorageError):
            return None
        backoff = (rng or random).uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        suggested = getattr(exc, "retry_after", None)
        if suggested is not None:
            # Never earlier than the server asked; a little jitter avoids a herd.
            return float(suggested) + backoff * 0.1
        return backoff
