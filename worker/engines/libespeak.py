"""libespeak-ng through ctypes: one load of the library per process, and its callback.

The library and its data come from the ``espeakng-loader`` wheel; no
subprocess and no system espeak. Synthesis runs in ``AUDIO_OUTPUT_SYNCHRONOUS``
mode: ``espeak_Synth`` returns when the text is spoken, having handed every
audio buffer and event to one callback. Output is s16le mono at the rate
``espeak_Initialize`` returns (22 050 Hz for the bundled 1.52).

The library keeps global state and is not thread-safe: every call into it
holds :data:`LOCK`. :func:`load` with ``fresh=True`` unloads and reloads it,
which is how :class:`~worker.engines.espeak.EspeakEngine` makes output
reproducible (see its module).
"""

from __future__ import annotations

import _ctypes
import ctypes
import logging
import os
import threading
import time
from pathlib import Path
from typing import Final

import espeakng_loader

from ttsbatch.errors import ConfigError
from worker.engines import StopCheck
from worker.engines.espeak_timing import WordEvent

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


class Capture:
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


class Library:
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
        self.capture: Capture | None = None
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

    def speak(self, data: bytes, capture: Capture) -> bool:
        """Speak NUL-terminated UTF-8 ``data`` into ``capture``; return whether espeak said OK."""
        self.capture = capture
        try:
            status = self.dll.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
        finally:
            self.capture = None
        return bool(status == _EE_OK)

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


LOCK = threading.Lock()  # guards the library (and the engine slot), serialises every call
_library: Library | None = None
_warned_shared = False


def load(*, fresh: bool = False) -> Library:
    """Return the process's library, (re)loading it if needed; hold ``LOCK``."""
    global _library  # noqa: PLW0603 - one native library per process is the point
    if _library is not None and fresh:
        _library.unload()
        _library = None
    if _library is None:
        _library = Library()
    return _library


def list_voices() -> list[str]:
    """Return the voices :class:`EspeakEngine` accepts, as language tags (``en-us``, ``fr-fr``).

    A variant may be appended to any of them (``en-us+f3``). espeak-ng's own
    voice names and identifiers (``English (America)``, ``gmw/en-US``) work too.
    """
    with LOCK:
        library = load()
        voices = library.voices()
        return sorted({tag for tag, name in voices if library.missing_dictionary(name) is None})


def resolve(library: Library, voice: str) -> str:
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
