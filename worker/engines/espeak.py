"""espeak-ng, embedded: offline speech with word timings, through ctypes.

The library and its data come from the ``espeakng-loader`` wheel; no
subprocess and no system espeak. Synthesis runs in ``AUDIO_OUTPUT_SYNCHRONOUS``
mode: ``espeak_Synth`` returns when the text is spoken, having handed every
audio buffer and event to one callback. Output is s16le mono at the rate
``espeak_Initialize`` returns (22 050 Hz for the bundled 1.52).

Word timings come from ``espeakEVENT_WORD``: ``text_position`` is a 1-based
index in code points (not bytes) of the UTF-8 text, ``sample`` the word's
first sample. :func:`word_timings` maps them onto :func:`worker.words.word_spans`.

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

import _ctypes
import ctypes
import logging
import os
import threading
import time
import weakref
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

import espeakng_loader

from ttsbatch.errors import ConfigError, PermanentEngineError, RetryableEngineError
from ttsbatch.models import TimingSource, WordTiming
from worker.engines import StopCheck, Synthesis
from worker.words import word_spans

logger = logging.getLogger(__name__)

# speak_lib.h (API revision 12) and espeak_ng.h.
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000  # return an error instead of exit() when data is missing
_CHARS_UTF8: Final = 1
_POS_CHARACTER: Final = 1
_EVENT_LIST_TERMINATED: Final = 0
_EVENT_WORD: Final = 1
_PARAM_RATE: Final = 1
_EE_OK: Final = 0
_RAND_SEED: Final = 0
RATE_MIN_WPM: Final = 80
RATE_MAX_WPM: Final = 450
_BUFFER_MS: Final = 0  # espeak's default 60 ms; larger buffers measured no faster
# should_stop may be costly (a Redis read); a 400-character chunk takes ~20 ms.
_STOP_CHECK_SECONDS: Final = 0.05
_TRIM_WINDOW: Final = 8192  # samples scanned at a time for trailing silence


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


class _Voice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_PROTOTYPES: Final = {
    "espeak_Initialize": (
        ctypes.c_int,
        (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int),
    ),
    "espeak_Terminate": (ctypes.c_int, ()),
    "espeak_SetSynthCallback": (None, (_SynthCallback,)),
    "espeak_SetVoiceByName": (ctypes.c_int, (ctypes.c_char_p,)),
    "espeak_SetParameter": (ctypes.c_int, (ctypes.c_int, ctypes.c_int, ctypes.c_int)),
    "espeak_GetParameter": (ctypes.c_int, (ctypes.c_int, ctypes.c_int)),
    "espeak_ListVoices": (ctypes.POINTER(ctypes.POINTER(_Voice)), (ctypes.c_void_p,)),
    "espeak_ng_SetRandSeed": (None, (ctypes.c_long,)),
    "espeak_Synth": (
        ctypes.c_int,
        (
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ),
    ),
}


class WordEvent(NamedTuple):
    """An ``espeakEVENT_WORD``: where in the text (0-based code point) and audio it starts."""

    char: int
    sample: int


class _Capture:
    """What one ``espeak_Synth`` call delivers to the callback."""

    def __init__(self, should_stop: StopCheck | None) -> None:
        self.pcm = bytearray()
        self.events: list[WordEvent] = []
        self.should_stop = should_stop
        self.next_check = time.monotonic() + _STOP_CHECK_SECONDS
        self.stopped = False
        self.error: BaseException | None = None

    def on_synth(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]
    ) -> int:
        """Collect a buffer and its events; return 1 to abort synthesis."""
        # An exception must not escape into C: keep it and abort.
        try:
            if count > 0 and wav:
                self.pcm += ctypes.string_at(wav, count * 2)
            i = 0
            while events and (event := events[i]).type != _EVENT_LIST_TERMINATED:
                if event.type == _EVENT_WORD:
                    self.events.append(WordEvent(event.text_position - 1, event.sample))
                i += 1
            if self.should_stop is not None and time.monotonic() >= self.next_check:
                self.next_check = time.monotonic() + _STOP_CHECK_SECONDS
                self.stopped = self.should_stop()
        except BaseException as exc:  # noqa: BLE001 - re-raised by synthesize, outside C
            self.error = exc
            return 1
        return 1 if self.stopped else 0


class _Library:
    """One load of libespeak-ng, initialised, seeded and given its callback."""

    def __init__(self) -> None:
        try:
            self.path = str(espeakng_loader.get_library_path())
            self.data = Path(str(espeakng_loader.get_data_path()))
            self.dll = ctypes.CDLL(self.path)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"espeak-ng: cannot load the espeakng-loader wheel: {exc}") from exc
        for name, (restype, argtypes) in _PROTOTYPES.items():
            function = getattr(self.dll, name)
            function.restype, function.argtypes = restype, argtypes
        flags = _INITIALIZE_DONT_EXIT
        rate = int(
            self.dll.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, bytes(self.data.parent), flags
            )
        )
        if rate <= 0:
            raise ConfigError(f"espeak-ng: initialisation failed with data in {self.data}")
        self.sample_rate = rate
        self.dll.espeak_ng_SetRandSeed(_RAND_SEED)  # not the clock: whisper variants use noise
        self.capture: _Capture | None = None
        self.callback = _SynthCallback(self._on_synth)  # kept referenced while C holds it
        self.dll.espeak_SetSynthCallback(self.callback)
        self._voices: list[tuple[str, str]] | None = None

    def _on_synth(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]
    ) -> int:
        return 1 if self.capture is None else self.capture.on_synth(wav, count, events)

    def select(self, voice: str, rate_wpm: int | None) -> int | None:
        """Select ``voice`` and a rate (None: espeak's default); return the rate, or None."""
        if self.dll.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            return None
        rate = int(rate_wpm or self.dll.espeak_GetParameter(_PARAM_RATE, 0))
        self.dll.espeak_SetParameter(_PARAM_RATE, rate, 0)
        return rate

    def voices(self) -> list[tuple[str, str]]:
        """Return (first language tag, identifier) of each voice."""
        if self._voices is None:
            listed = self.dll.espeak_ListVoices(None)
            self._voices = []
            i = 0
            while listed[i]:
                voice = listed[i].contents
                # ``languages`` is (priority byte, tag, NUL)*; c_char_p stops after the first.
                tag = (voice.languages or b"")[1:].decode("ascii", "replace")
                identifier = (voice.identifier or b"").decode("ascii", "replace")
                if tag:
                    self._voices.append((tag, identifier))
                i += 1
        return self._voices

    def missing_dictionary(self, identifier: str) -> str | None:
        """Return the dictionary a language voice names if this build lacks it, else None.

        espeak-ng accepts such a voice (fo, kaa, xex in 1.52) and then speaks silence.
        """
        try:
            lines = (self.data / "lang" / identifier).read_text("utf-8", "replace").splitlines()
        except OSError:
            return None  # not a language file (a variant, a path): espeak decides
        words = [line.split() for line in lines]
        named = [w[1] for w in words if len(w) > 1 and w[0] == "dictionary"]
        languages = [w[1].split("-")[0] for w in words if len(w) > 1 and w[0] == "language"]
        names = named or languages
        if not names or (self.data / f"{names[0]}_dict").exists():
            return None
        return names[0]

    def unload(self) -> None:
        """Terminate and unload; warn if the library stays mapped (then state survives)."""
        self.dll.espeak_Terminate()
        handle = self.dll._handle
        del self.dll
        _ctypes.dlclose(handle)
        try:
            still = ctypes.CDLL(self.path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        except OSError:
            return  # unloaded: the next load starts from the library's initial state
        _ctypes.dlclose(still._handle)
        global _warned_shared  # noqa: PLW0603 - say it once per process, not per chunk
        if not _warned_shared:
            _warned_shared = True
            logger.warning(
                "libespeak-ng is also loaded by other code in this process: it cannot be "
                "reset, so its output may depend on what was spoken before"
            )


_lock = threading.Lock()  # guards _library and _live, and serialises every library call
_library: _Library | None = None
_live: weakref.ref[EspeakEngine] | None = None
_warned_shared = False


def _load(*, fresh: bool = False) -> _Library:
    """Return the process's library, (re)loading it if needed; hold ``_lock``."""
    global _library  # noqa: PLW0603 - one native library per process is the point
    if _library is not None and fresh:
        _library.unload()
        _library = None
    if _library is None:
        _library = _Library()
    return _library


def list_voices() -> list[str]:
    """Return the voices :class:`EspeakEngine` accepts, as language tags (``en-us``, ``fr-fr``).

    A variant may be appended to any of them (``en-us+f3``). espeak-ng's own
    voice names and identifiers (``English (America)``, ``gmw/en-US``) work too.
    """
    with _lock:
        library = _load()
        voices = library.voices()
        return sorted({tag for tag, name in voices if library.missing_dictionary(name) is None})


def _resolve(library: _Library, voice: str) -> str:
    """Return the name to give ``espeak_SetVoiceByName`` for ``voice``.

    espeak-ng matches voice names and file names, not language tags ("en-gb"
    is the file gmw/en): a tag is turned into its voice's identifier first.
    """
    base, plus, variant = voice.partition("+")
    identifiers = {tag.casefold(): identifier for tag, identifier in reversed(library.voices())}
    identifier = identifiers.get(base.casefold(), base)
    missing = library.missing_dictionary(identifier)
    if missing is not None:
        raise ConfigError(
            f"espeak voice {voice!r} needs the dictionary {missing}_dict, which the "
            "espeakng-loader wheel lacks: choose another from list_voices()"
        )
    return identifier + plus + variant


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
        with _lock:
            other = _live() if _live is not None else None
            if other is not None and other._owned_here():
                raise ConfigError(
                    "espeak-ng allows one live engine per process (its state is global): "
                    "close the other engine first, or create one engine in each worker process"
                )
            library = _load()
            self._voice_id = _resolve(library, voice)
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
        capture = _Capture(should_stop)
        with _lock:
            library = _load(fresh=self.reproducible)
            if self.reproducible:
                library.select(self._voice_id, self.rate_wpm)
            library.capture = capture
            try:
                status = library.dll.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
            finally:
                library.capture = None
        if capture.error is not None:
            raise capture.error
        if capture.stopped:
            raise RetryableEngineError("espeak: stopped by the caller")
        if status != _EE_OK or not capture.pcm:
            raise PermanentEngineError(
                f"espeak failed (status {status}, {len(capture.pcm) // 2} samples) on "
                f"{len(text)} characters: {text[:40]!r}…"
            )
        pcm = bytes(capture.pcm)
        words = word_timings(text, capture.events, pcm)
        return Synthesis(pcm, self.sample_rate, words, TimingSource.PROVIDER)

    def close(self) -> None:
        """Free this process's engine slot; the library stays loaded for the next one."""
        global _live  # noqa: PLW0603 - see __init__
        with _lock:
            self._closed = True
            if _live is not None and _live() is self:
                _live = None

    def __enter__(self) -> EspeakEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def word_timings(text: str, events: Sequence[WordEvent], pcm: bytes) -> tuple[WordTiming, ...]:
    """Time every word of ``word_spans(text)`` from espeak's word events.

    Each event is anchored on a word: the one containing its position; for a
    position between words (a symbol such as ``$``, ``%`` or an emoji), the
    word it touches on the left, else the next word. Events anchored on the
    same word (espeak reads "3.5" as three words) form one group, which also
    takes the words that got no event of their own ("e.g.", "déjà vu" often
    do): a group spans the words from its anchor to the next group's anchor,
    and runs from its first event's sample to the next group's. A group with
    as many events as words gives each word its own event; otherwise its time
    is split among its words in proportion to their length in characters.
    Trailing digital silence (espeak's pauses are exact zeros) is trimmed from
    the end of each word, so a word before a comma does not hold the pause.
    """
    spans = word_spans(text)
    if not spans:
        return ()
    total = len(pcm) // 2
    ends = [end for _, end in spans]
    groups: list[tuple[int, list[int]]] = []  # (first word, event samples)
    last_sample = 0
    for char, sample in events:
        word = _anchor(spans, ends, char)
        last_sample = min(max(sample, last_sample), total)
        if groups and word <= groups[-1][0]:
            groups[-1][1].append(last_sample)
        else:
            groups.append((word, [last_sample]))
    if not groups:
        groups = [(0, [0])]
    groups[0] = (0, groups[0][1])  # words before the first event join it
    timings: list[WordTiming] = []
    for g, (first, samples) in enumerate(groups):
        following = groups[g + 1] if g + 1 < len(groups) else (len(spans), [total])
        members = spans[first : following[0]]
        if len(members) > 1 and len(samples) == len(members):
            bounds = [*samples, following[1][0]]
            for k, (start, end) in enumerate(members):
                stop = _trim_silence(pcm, bounds[k], bounds[k + 1])
                timings.append(_timing(text, start, end, bounds[k], stop))
            continue
        begin = samples[0]
        stop = _trim_silence(pcm, begin, following[1][0])
        weights = [end - start for start, end in members]
        whole, done = sum(weights), 0
        for (start, end), weight in zip(members, weights, strict=True):
            a = begin + (stop - begin) * done // whole
            done += weight
            b = begin + (stop - begin) * done // whole
            timings.append(_timing(text, start, end, a, b))
    return tuple(timings)


def _anchor(spans: Sequence[tuple[int, int]], ends: Sequence[int], char: int) -> int:
    """Return the index of the word an event at code point ``char`` belongs to."""
    k = bisect_right(ends, char)  # the first word ending after char
    if k < len(spans) and spans[k][0] <= char:
        return k
    if k > 0 and (k == len(spans) or spans[k - 1][1] == char):
        return k - 1
    return k


def _trim_silence(pcm: bytes, start: int, end: int) -> int:
    """Return ``end`` moved back over trailing zero samples, never before ``start``."""
    while end > start:
        low = max(start, end - _TRIM_WINDOW)  # look at a window, not the whole word
        kept = len(pcm[low * 2 : end * 2].rstrip(b"\0"))
        if kept:
            return low + (kept + 1) // 2
        end = low
    return start


def _timing(text: str, char_start: int, char_end: int, start: int, end: int) -> WordTiming:
    return WordTiming(
        text=text[char_start:char_end],
        char_start=char_start,
        char_end=char_end,
        start=start,
        end=end,
    )
