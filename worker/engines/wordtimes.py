"""Provider word timestamps placed on a response's timeline and mapped onto the text.

Providers report words as strings with start/end times in seconds, once for
the whole input or once per segment, from the start of the response or
restarting at 0 per segment (tts-protocol.md). :class:`WordClock` turns them
into sample offsets on one timeline; :func:`word_timings` maps them onto the
chunk's characters with :func:`ttsbatch.audio.words.align`.

Placing a segment needs one number: where its audio starts in the response.
A segment whose first start lies more than :data:`RELATIVE_TOLERANCE` before
that point is relative to it (absolute times never run back into audio that
was already received for earlier segments) and is shifted by it; otherwise
its times are absolute and stay. Where the segment starts is known from what
the stream has shown when its words arrive:

* Audio events that carry an ``item_id`` mark where each item's audio
  starts. A word event naming an item whose audio has begun starts there,
  whatever the order of events.
* Otherwise only the order of events tells, and the audio received so far.
  A stream either sends each segment's words after its audio (the usual: a
  segment is aligned once it is spoken) or before it. Words that arrive
  before any audio at all can only come before their audio, so the first
  word event decides which: after, and a segment starts where the previous
  segment's words arrived (0 for the first); before, and it starts at the
  audio received so far. That also covers an ``item_id`` on word events
  that no audio event named (audio without ids, or words ahead of their
  item's audio), which is why an item's start is never guessed from the
  audio received when its words arrive: in the usual order that is where
  the segment ends.
* A single event for the whole input is the first and only segment: it
  starts at 0, so relative and absolute times coincide.

Without item ids on audio, a stream whose words lag behind into the next
segment's audio cannot be placed when its times are relative: nothing in it
says where the segment started.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ttsbatch.audio.words import align, word_spans
from ttsbatch.errors import RetryableEngineError
from ttsbatch.models import WordTiming

log = logging.getLogger(__name__)

# A segment starting this much (in seconds) before the audio of its own item
# is taken to be relative to that item: absolute times never run backwards.
RELATIVE_TOLERANCE = 0.02


@dataclass(frozen=True, slots=True)
class Stamp:
    """A reported word and its ``[start, end)`` on the response's timeline, in samples."""

    word: str
    start: int
    end: int


def is_relative(first_start: int, item_start: int, sample_rate: int) -> bool:
    """Return whether a segment's times restart at 0 for its own item.

    Args:
        first_start: The segment's first word start as reported, in samples.
        item_start: Where the segment's audio starts in the response, in samples.
        sample_rate: Samples per second.
    """
    return first_start < item_start - RELATIVE_TOLERANCE * sample_rate


def parse_word_event(payload: Mapping[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """Return the words, starts and ends (seconds) of a ``word_timestamps`` event.

    The arrays sit at the top level or under ``timestamps``.

    Raises:
        RetryableEngineError: for arrays missing, of unequal lengths or not numbers
            (a protocol error: retry, then fail).
    """
    source = payload.get("timestamps", payload)
    if not isinstance(source, Mapping):
        source = payload
    words, starts, ends = (source.get(k) for k in ("words", "start_seconds", "end_seconds"))
    if not (isinstance(words, list) and isinstance(starts, list) and isinstance(ends, list)):
        raise RetryableEngineError("word timestamps event without words/start_seconds/end_seconds")
    if not len(words) == len(starts) == len(ends):
        raise RetryableEngineError(
            f"word timestamps event with {len(words)} words, {len(starts)} starts and {len(ends)} ends"
        )
    try:
        return [str(w) for w in words], [float(s) for s in starts], [float(e) for e in ends]
    except (TypeError, ValueError):
        raise RetryableEngineError("word timestamps event with non-numeric times") from None


class WordClock:
    """Places word timestamp segments on the response's timeline (see the module docstring)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.stamps: list[Stamp] = []
        self.reported = False
        self._items: dict[str, int] = {}
        self._previous = 0  # audio received when the previous segment's words arrived
        self._words_first: bool | None = None  # decided by the first word event

    def audio(self, item_id: object, received: int) -> None:
        """Note audio of ``item_id`` arriving after ``received`` samples."""
        if isinstance(item_id, str):
            self._items.setdefault(item_id, received)

    def _segment_start(self, item_id: object, received: int) -> int:
        """Return where the segment reported after ``received`` samples starts."""
        if self._words_first is None:
            self._words_first = received == 0
        previous, self._previous = self._previous, received
        if isinstance(item_id, str) and item_id in self._items:
            return self._items[item_id]
        return received if self._words_first else previous

    def segment(
        self,
        words: Sequence[str],
        starts: Sequence[float],
        ends: Sequence[float],
        *,
        item_id: object,
        received: int,
    ) -> None:
        """Add a segment of words (times in seconds) reported after ``received`` samples."""
        self.reported = self.reported or bool(words)
        rate = self.sample_rate
        base = self._segment_start(item_id, received)
        if not words:
            return
        first = round(starts[0] * rate)
        offset = base if is_relative(first, base, rate) else 0
        for word, start, end in zip(words, starts, ends, strict=True):
            a = max(0, round(start * rate) + offset)
            self.stamps.append(Stamp(word, a, max(a, round(end * rate) + offset)))


def word_timings(text: str, stamps: Sequence[Stamp], total: int) -> tuple[WordTiming, ...]:
    """Map reported words onto ``text``; times are clamped to the audio's ``total`` samples.

    A reported word that matches no word of the text keeps no timing: its time
    belongs to the chunk, but to no character.
    """
    spans = align(text, [stamp.word for stamp in stamps])
    timings = []
    for stamp, span in zip(stamps, spans, strict=True):
        if span is None:
            log.debug("reported word %r matches no word of the chunk", stamp.word)
            continue
        start = min(stamp.start, total)
        timings.append(
            WordTiming(
                text=text[span[0] : span[1]],
                char_start=span[0],
                char_end=span[1],
                start=start,
                end=min(max(stamp.end, start), total),
            )
        )
    return tuple(timings)


def estimated_timings(text: str, total: int) -> tuple[WordTiming, ...]:
    """Spread ``total`` samples over the words of ``text`` in proportion to their length.

    Only for an explicit opt-in: such times are marked ``ESTIMATED``.
    """
    spans = word_spans(text)
    chars = sum(b - a for a, b in spans)
    if not chars:
        return ()
    timings, done = [], 0
    for a, b in spans:
        start = total * done // chars
        done += b - a
        timings.append(
            WordTiming(
                text=text[a:b], char_start=a, char_end=b, start=start, end=total * done // chars
            )
        )
    return tuple(timings)
