"""Word times held compactly, and a finished document's timeline, for a player's chapters.

A book's timestamps file is large (*Moby-Dick*: about 214 000 words, 19 MB of
JSON) and a player asks for it a chapter at a time, so it is parsed once per
process (:class:`~scheduler.api.memo.Memo`) into flat arrays: 32 bytes a word
(7 MB for that book) instead of a Python object per word. A chapter's preview
words are kept the same way.
"""

from __future__ import annotations

import bisect
import json
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from ttsbatch.errors import JobError
from ttsbatch.models import TimedWord

#: A word as a player reads it: start and end (s), char_start and char_end.
Word = tuple[float, float, int, int]

#: Bytes of a timestamps file that hold its ``duration``: it is the third field,
#: after ``schema`` and ``sample_rate`` (the model's field order, which the
#: stitch writes first: :func:`ttsbatch.audio.timeline.json_start`).
HEAD_BYTES = 256
_DURATION = re.compile(rb'^\{"schema":"[^"]*","sample_rate":\d+,"duration":([0-9.eE+-]+)[,}]')


def head_duration(head: bytes) -> float | None:
    """Return the ``duration`` a timestamps file's first :data:`HEAD_BYTES` give, if they do."""
    match = _DURATION.match(head)
    return float(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class WordTimes:
    """Words in text order: times (s) and character spans, in parallel arrays.

    Words come chunk by chunk in plan order and in order within a chunk, so
    those of a stretch of text are found by bisecting their character starts.
    """

    starts: array[float]
    ends: array[float]
    char_starts: array[int]
    char_ends: array[int]

    @classmethod
    def of(cls, words: Iterable[TimedWord]) -> WordTimes:
        """Return the times of ``words``, in their order."""
        times = cls(array("d"), array("d"), array("q"), array("q"))
        for word in words:
            times.starts.append(word.start)
            times.ends.append(word.end)
            times.char_starts.append(word.char_start)
            times.char_ends.append(word.char_end)
        return times

    def between(self, char_start: int, char_end: int) -> list[Word]:
        """Return the words that start in ``char_start``..``char_end``, offsets relative to it."""
        i = bisect.bisect_left(self.char_starts, char_start)
        j = bisect.bisect_left(self.char_starts, char_end, lo=i)
        return list(
            zip(
                self.starts[i:j],
                self.ends[i:j],
                (c - char_start for c in self.char_starts[i:j]),
                (c - char_start for c in self.char_ends[i:j]),
                strict=True,
            )
        )


@dataclass(frozen=True, slots=True)
class FinishedTimeline:
    """The times a player needs from ``<doc>.timestamps.json``: chunk starts and words."""

    sample_rate: int
    duration: float
    chunk_starts: array[float]
    words: WordTimes

    @classmethod
    def parse(cls, data: bytes, *, name: str) -> FinishedTimeline:
        """Return the timeline of a timestamps file (``ttsbatch.timestamps/1``).

        Raises:
            JobError: ``data`` is not a timestamps file.
        """
        try:
            parsed = json.loads(data)
            words = parsed["words"]
            return cls(
                sample_rate=int(parsed["sample_rate"]),
                duration=float(parsed["duration"]),
                chunk_starts=array("d", (float(c["start"]) for c in parsed["chunks"])),
                words=WordTimes(
                    starts=array("d", (float(w["start"]) for w in words)),
                    ends=array("d", (float(w["end"]) for w in words)),
                    char_starts=array("q", (int(w["char_start"]) for w in words)),
                    char_ends=array("q", (int(w["char_end"]) for w in words)),
                ),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(f"{name}: not a timestamps file ({exc!r})") from exc

    def span(self, first: int, stop: int) -> tuple[float, float]:
        """Return where chunks ``first`` to ``stop`` (positions, exclusive) lie, with pauses (s)."""
        end = self.chunk_starts[stop] if stop < len(self.chunk_starts) else self.duration
        return self.chunk_starts[first], end
