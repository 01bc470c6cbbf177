"""What the imitation provider does: stream shapes, framing, pacing and faults.

One frozen :class:`FakeProviderConfig` per server. Any field can be changed for
a single request with a header ``x-fake-<field>`` (underscores as dashes, e.g.
``x-fake-shape: b64``, ``x-fake-newline: cr``, ``x-fake-fault: stall``), and for
the command line with ``key=value`` strings; both go through
:func:`parse_options`.

A streamed Together response can take every combination of the variants of
tts-protocol.md: audio ``shape`` (``delta``, ``b64``, ``audio``; ``raw`` is a
body without events, hence without timestamps) × ``audio_item_ids`` (whether
audio events carry ``item_id``) × ``word_item_ids`` (whether per-segment
timestamp events do) × ``timestamps`` (``once`` for the whole input, or per
sentence ``absolute`` or ``relative``; ``none``) × ``timestamps_order``
(timestamps ``after`` or ``before`` the audio they time) × ``timestamps_key``
(arrays at the ``top`` level or ``nested`` under ``timestamps``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Shape(StrEnum):
    """How audio travels in a streamed response (tts-protocol.md, "Varies")."""

    DELTA = "delta"  # conversation.item.audio_output.delta {"delta": b64}
    B64 = "b64"  # {"object": "audio.tts.chunk", "b64": b64}
    AUDIO = "audio"  # {"type": "delta", "audio": b64} then {"type": "done"}
    RAW = "raw"  # no SSE at all: application/octet-stream PCM


class StampMode(StrEnum):
    """How word timestamps are sent.

    ``once`` has no relative variant: its one segment is the whole response,
    so times from the start of its segment are times from the response start.
    """

    ONCE = "once"  # one event for the whole input
    ABSOLUTE = "absolute"  # one event per sentence, times from the response start
    RELATIVE = "relative"  # one event per sentence, times restarting at 0
    NONE = "none"  # no timestamps at all


class StampOrder(StrEnum):
    """Whether word timestamps arrive after or before the audio they time."""

    AFTER = "after"  # each segment's words after its audio; a single event after all of it
    BEFORE = "before"  # each segment's words before its audio; a single event before all of it


class StampPlace(StrEnum):
    """Where the timestamp arrays sit in the event."""

    TOP = "top"
    NESTED = "nested"  # under a "timestamps" key


class Newline(StrEnum):
    """SSE line ending."""

    LF = "lf"
    CRLF = "crlf"
    CR = "cr"

    @property
    def chars(self) -> str:
        """The line ending itself."""
        return {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[self.value]


class Fault(StrEnum):
    """Every failure of tts-protocol.md the provider can inject."""

    RATE_LIMIT_MS = "429-retry-after-ms"
    RATE_LIMIT_SECONDS = "429-retry-after"
    RATE_LIMIT_DATE = "429-retry-after-date"
    RATE_LIMIT_RESET = "429-ratelimit-reset"
    RATE_LIMIT_BARE = "429-no-hint"
    OLD_RATE_LIMIT = "400-rate-limit"
    UNAVAILABLE = "503"
    HTML_500 = "500-html"
    TRUNCATE = "truncate"  # clean end of stream before [DONE]
    ABORT = "abort"  # connection cut mid-body
    ERROR_EVENT = "error-event"
    STALL = "stall"  # silence longer than the client's read timeout
    MALFORMED = "malformed"  # a data: line that is not JSON
    UNAUTHORIZED = "401"
    PAYMENT_REQUIRED = "402"
    UNKNOWN_VOICE = "unknown-voice"  # 400 naming the voice
    INSUFFICIENT_QUOTA = "429-insufficient-quota"  # OpenAI: not retryable


RETRYABLE_STATUS_FAULTS: tuple[Fault, ...] = (
    Fault.RATE_LIMIT_MS,
    Fault.RATE_LIMIT_SECONDS,
    Fault.RATE_LIMIT_DATE,
    Fault.RATE_LIMIT_RESET,
    Fault.RATE_LIMIT_BARE,
    Fault.OLD_RATE_LIMIT,
    Fault.UNAVAILABLE,
    Fault.HTML_500,
)
"""Faults answered with an error status that a correct client retries."""

RETRYABLE_FAULTS: tuple[Fault, ...] = (
    *RETRYABLE_STATUS_FAULTS,
    Fault.TRUNCATE,
    Fault.ABORT,
    Fault.ERROR_EVENT,
    Fault.STALL,
    Fault.MALFORMED,
)
"""Faults a correct client survives by retrying: the default random mix."""

STATUS_FAULTS = frozenset(
    {
        *RETRYABLE_STATUS_FAULTS,
        Fault.UNAUTHORIZED,
        Fault.PAYMENT_REQUIRED,
        Fault.UNKNOWN_VOICE,
        Fault.INSUFFICIENT_QUOTA,
    }
)
"""Faults answered with an error status instead of a 200 stream."""


@dataclass(frozen=True, slots=True)
class FakeProviderConfig:
    """Behaviour of the imitation provider (every field overridable per request).

    Attributes:
        shape: Audio event shape of streamed Together responses.
        timestamps: Word timestamp mode.
        timestamps_key: Arrays at the top level or under ``timestamps``.
        timestamps_order: Word timestamps after (as in the documented example) or
            before the audio they time.
        audio_item_ids: Whether audio events name their segment with
            ``item_id``; None: as the shape documents it (``delta`` events do,
            ``b64`` and ``audio`` events do not).
        word_item_ids: Whether per-segment word timestamp events carry their
            segment's ``item_id`` (the single event of ``once`` never does);
            None: when the audio events do.
        newline: SSE line ending.
        split: 0 writes each event at once; N > 0 writes it in pieces of at
            most N bytes (plus a 3-byte head and a 1-byte tail, so that
            ``data:`` and ``\\r\\n`` are cut), pausing between writes so that
            the client reads them separately.
        keepalive: Send a ``:`` comment line before every event.
        multiline: Spread each JSON payload over several ``data:`` lines.
        data_space: ``data: x`` (True) or ``data:x`` (False).
        extra_fields: Add ``event:``, ``id:`` and ``retry:`` fields.
        odd_deltas: Cut audio deltas at odd byte lengths.
        delta_bytes: PCM bytes per audio delta.
        done_token: The end marker's text (``[DONE]``; try ``[done]``).
        sample_rate: Output rate for models without a fixed rate (0: 24000,
            or the request's ``sample_rate`` for Cartesia); when set, OpenAI
            raw PCM announces it as ``audio/pcm;rate=N``.
        ttfb: Seconds before the response starts.
        rtf: Real-time factor of the stream (0: as fast as possible; 0.5:
            audio arrives twice as fast as it plays).
        max_concurrency: Requests in flight beyond which the answer is 429.
        rate_limit_headers: Send ``x-ratelimit-*`` headers on success.
        fault_rate: Probability that a request is faulted.
        faults: Faults chosen from (uniformly) when a request is faulted.
        seed: Seed of the fault choice; the choice for the n-th attempt at a
            text depends only on (seed, text, n), not on request order.
        fault: Force this fault (per request: ``x-fake-fault``); "none" forbids one.
        retry_delay: The delay (s) the provider suggests in its retry hints.
        stall: Seconds a stalled stream stays silent.
        api_key: When set, requests must carry ``Authorization: Bearer <api_key>``.
        hold: A regular expression: a request whose text it matches (``re.search``)
            waits before answering until the provider is released
            (``POST /_release`` or :meth:`ProviderState.release`) or ``hold_timeout``
            passes, e.g. to keep one chapter of a job unfinished while a test looks.
        hold_timeout: The longest a held request waits (s).
    """

    shape: Shape = Shape.DELTA
    timestamps: StampMode = StampMode.ABSOLUTE
    timestamps_key: StampPlace = StampPlace.TOP
    timestamps_order: StampOrder = StampOrder.AFTER
    audio_item_ids: bool | None = None
    word_item_ids: bool | None = None
    newline: Newline = Newline.LF
    split: int = 0
    keepalive: bool = False
    multiline: bool = False
    data_space: bool = True
    extra_fields: bool = False
    odd_deltas: bool = False
    delta_bytes: int = 9600
    done_token: str = "[DONE]"  # noqa: S105 - the end-of-stream marker, not a secret
    sample_rate: int = 0
    ttfb: float = 0.0
    rtf: float = 0.0
    max_concurrency: int | None = None
    rate_limit_headers: bool = True
    fault_rate: float = 0.0
    faults: tuple[Fault, ...] = RETRYABLE_FAULTS
    seed: int = 0
    fault: Fault | None = None
    retry_delay: float = 0.2
    stall: float = 3.0
    api_key: str | None = None
    hold: str | None = None
    hold_timeout: float = 60.0


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _optional_bool(value: str) -> bool | None:
    return None if value.strip().lower() in {"", "none"} else _bool(value)


def _optional_int(value: str) -> int | None:
    return None if value.strip().lower() in {"", "none"} else int(value)


def _optional_str(value: str) -> str | None:
    return None if value.strip().lower() in {"", "none"} else value


def _fault(value: str) -> Fault | None:
    return None if value.strip().lower() in {"", "none"} else Fault(value.strip())


def _faults(value: str) -> tuple[Fault, ...]:
    if value.strip().lower() == "all":
        return tuple(Fault)
    if value.strip().lower() == "retryable":
        return RETRYABLE_FAULTS
    return tuple(Fault(part.strip()) for part in value.split(",") if part.strip())


_PARSERS: dict[str, Callable[[str], object]] = {
    "shape": Shape,
    "timestamps": StampMode,
    "timestamps_key": StampPlace,
    "timestamps_order": StampOrder,
    "audio_item_ids": _optional_bool,
    "word_item_ids": _optional_bool,
    "newline": Newline,
    "split": int,
    "keepalive": _bool,
    "multiline": _bool,
    "data_space": _bool,
    "extra_fields": _bool,
    "odd_deltas": _bool,
    "delta_bytes": int,
    "done_token": str,
    "sample_rate": int,
    "ttfb": float,
    "rtf": float,
    "max_concurrency": _optional_int,
    "rate_limit_headers": _bool,
    "fault_rate": float,
    "faults": _faults,
    "seed": int,
    "fault": _fault,
    "retry_delay": float,
    "stall": float,
    "api_key": _optional_str,
    "hold": _optional_str,
    "hold_timeout": float,
}

HEADER_PREFIX = "x-fake-"


def option_names() -> list[str]:
    """Return the names of every option (the fields of :class:`FakeProviderConfig`)."""
    return [field.name for field in dataclasses.fields(FakeProviderConfig)]


def parse_options(base: FakeProviderConfig, values: Mapping[str, str]) -> FakeProviderConfig:
    """Return ``base`` with options given as strings applied.

    Args:
        base: The configuration to start from.
        values: Option name (``delta_bytes`` or ``delta-bytes``) to its text.

    Raises:
        ValueError: naming the option, for an unknown option or a bad value.
    """
    changes: dict[str, object] = {}
    for raw_name, text in values.items():
        name = raw_name.strip().lower().replace("-", "_")
        parser = _PARSERS.get(name)
        if parser is None:
            raise ValueError(f"unknown option {raw_name!r}: choose from {', '.join(_PARSERS)}")
        try:
            changes[name] = parser(text)
        except ValueError as exc:
            raise ValueError(f"bad value {text!r} for option {raw_name!r}: {exc}") from None
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def from_headers(base: FakeProviderConfig, headers: Mapping[str, str]) -> FakeProviderConfig:
    """Return ``base`` with the request's ``x-fake-*`` headers applied."""
    values = {
        name[len(HEADER_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX)
    }
    return parse_options(base, values) if values else base
