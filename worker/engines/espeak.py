"""espeak-ng, embedded: offline speech with word timings, through ctypes.

The binding to the library is :mod:`.libespeak`; the mapping of its word
events onto the text's words is :mod:`.espeak_timing`.

Word timings come from ``espeakEVENT_WORD``: ``text_position`` is a 1-based
index in code points (not bytes) of the UTF-8 text, ``sample`` the word's
first sample. :func:`word_timings` maps them onto :func:`ttsbatch.audio.words.word_spans`.

Reproducibility: espeak-ng keeps synthesis state in C statics that no API call
resets (pitch flutter phase, gain control), so a text's audio depends on what
the process spoke before, and its noise generator is seeded from the clock.
A reproducible engine (the default) therefore reloads the library (dlclose,
dlopen, initialise, seed, select the voice) before each synthesis: ~3 ms, ~15%
of a 400-character chunk. Then the same text, voice and rate give the same bytes
in any process, whatever ran before.

espeak-ng keeps global state and is not thread-safe: a process holds at most
one live :class:`EspeakEngine`, used only by the thread (and process) that
created it; anything else raises ``ConfigError``. Create the engine in the
process that uses it (a pool initializer, Celery's ``worker_process_init``),
not in a parent that forks. Closing an engine frees the slot for another.
"""

from __future__ import annotations

import os
import threading
import weakref

from ttsbatch.errors import ConfigError, PermanentEngineError, RetryableEngineError
from ttsbatch.models import TimingSource
from worker.engines import StopCheck, Synthesis
from worker.engines.espeak_timing import word_timings
from worker.engines.libespeak import (
    LOCK,
    RATE_MAX_WPM,
    RATE_MIN_WPM,
    Capture,
    list_voices,
    load,
    resolve,
)

__all__ = ["EspeakEngine", "list_voices"]

_live: weakref.ref[EspeakEngine] | None = None  # the process's one engine (guarded by LOCK)


class EspeakEngine:
    """espeak-ng in this process; see the module docstring for its threading rules.

    Args:
        voice: A name :func:`list_voices` gives, optionally with a variant (``en-us+f3``).
        rate_wpm: Speaking rate in words per minute (80-450); None for espeak's 175.
        reproducible: Reload the library before each synthesis so that output
            never depends on what the process spoke before (module docstring).

    Raises:
        ConfigError: unknown voice, rate out of range, the library failing to
            load, or another engine already live in this process.
    """

    name = "espeak"
    # espeak has no request limit and speaks 400 characters (~25 s of audio) in
    # ~20 ms; the limit sets the unit of retries, progress and parallelism, and
    # matches the other engines' so that plans look alike.
    default_max_chars = 400

    def __init__(
        self, voice: str = "en-us", *, rate_wpm: int | None = None, reproducible: bool = True
    ) -> None:
        global _live  # noqa: PLW0603 - the one-engine-per-process guard is process state
        if rate_wpm is not None and not RATE_MIN_WPM <= rate_wpm <= RATE_MAX_WPM:
            raise ConfigError(
                f"espeak rate {rate_wpm} wpm is out of range: choose {RATE_MIN_WPM}-{RATE_MAX_WPM}"
            )
        with LOCK:
            other = _live() if _live is not None else None
            if other is not None and other._owned_here():
                raise ConfigError(
                    "espeak-ng allows one live engine per process (its state is global): "
                    "close the other engine first, or create one engine in each worker process"
                )
            library = load()
            self._voice_id = resolve(library, voice)
            rate = library.select(self._voice_id, rate_wpm)
            if rate is None:
                raise ConfigError(
                    f"unknown espeak voice {voice!r}: see worker.engines.espeak.list_voices() "
                    "for the names (en-us, en-gb, fr-fr, …)"
                )
            self._pid = os.getpid()
            self._thread = threading.get_ident()
            self._closed = False
            _live = weakref.ref(self)
        self.voice = voice
        self.rate_wpm = rate
        self.reproducible = reproducible
        self.sample_rate = library.sample_rate

    def _owned_here(self) -> bool:
        return not self._closed and self._pid == os.getpid()

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        """Speak ``text``; every word of :func:`word_spans` gets a timing.

        Raises:
            PermanentEngineError: the text is empty or whitespace, or espeak fails
                on it (espeak is deterministic: it would fail again).
            RetryableEngineError: ``should_stop`` returned True; nothing is kept.
            ConfigError: the engine is closed, or used from another thread or
                process than the one that created it.
        """
        if self._closed:
            raise ConfigError("this espeak engine is closed: create a new one")
        if self._pid != os.getpid() or self._thread != threading.get_ident():
            raise ConfigError(
                "espeak-ng is not thread-safe: use an engine only in the thread that created it "
                "(create one per worker process)"
            )
        if not text.strip():
            raise PermanentEngineError("espeak: nothing to say (the text is empty or whitespace)")
        if should_stop is not None and should_stop():
            raise RetryableEngineError("espeak: stopped by the caller before synthesis")
        # One byte per replaced code point keeps espeak's positions equal to Python's.
        data = text.replace("\0", " ").encode("utf-8", "replace") + b"\0"
        capture = Capture(should_stop)
        with LOCK:
            library = load(fresh=self.reproducible)
            if self.reproducible:
                library.select(self._voice_id, self.rate_wpm)
            spoken = library.speak(data, capture)
        if capture.error is not None:
            raise capture.error
        if capture.stopped:
            raise RetryableEngineError("espeak: stopped by the caller")
        if not spoken or not capture.pcm:
            raise PermanentEngineError(
                f"espeak failed ({len(capture.pcm) // 2} samples) on "
                f"{len(text)} characters: {text[:40]!r}…"
            )
        pcm = bytes(capture.pcm)
        words = word_timings(text, capture.events, pcm)
        return Synthesis(pcm, self.sample_rate, words, TimingSource.PROVIDER)

    def close(self) -> None:
        """Free this process's engine slot; the library stays loaded for the next one."""
        global _live  # noqa: PLW0603 - see __init__
        with LOCK:
            self._closed = True
            if _live is not None and _live() is self:
                _live = None

    def __enter__(self) -> EspeakEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
