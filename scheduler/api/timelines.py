"""A finished document's timeline, held compactly for the chapters a player asks for.

A book's timestamps file is large (*Moby-Dick*: about 215 000 words, 20 MB of
JSON) and a player asks for it a chapter at a time, so it is parsed once per
process (:class:`~scheduler.api.memo.Memo`) into flat arrays: about 24 bytes a
word (5 MB for that book) instead of a Python object per word.
"""

from __future__ import annotations

import bisect
import json
from array import array
from dataclasses import dataclass

from ttsbatch.errors import JobError

#: A word as a player reads it: start and end (s), char_start and char_end.
Word = tuple[float, float, int, int]


@dataclass(frozen=True, slots=True)
class FinishedTimeline:
    """The times a player needs from ``<doc>.timestamps.json``: chunk starts and words.

    Words are in text order (chunks are in plan order, each chunk's words in
    its order), so a chapter's are found by bisecting their character starts.
    """

    sample_rate: int
    duration: float
    chunk_starts: array[float]
    starts: array[float]
    ends: array[float]
    char_starts: array[int]
    char_ends: array[int]

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
                starts=array("d", (float(w["start"]) for w in words)),
                ends=array("d", (float(w["end"]) for w in words)),
                char_starts=array("q", (int(w["char_start"]) for w in words)),
                char_ends=array("q", (int(w["char_end"]) for w in words)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(f"{name}: not a timestamps file ({exc!r})") from exc

    def span(self, first: int, stop: int) -> tuple[float, float]:
        """Return where chunks ``first`` to ``stop`` (positions, exclusive) lie, with pauses (s)."""
        end = self.chunk_starts[stop] if stop < len(self.chunk_starts) else self.duration
        return self.chunk_starts[first], end

    def words(self, char_start: int, char_end: int) -> list[Word]:
        """Return the words that start in ``char_start``..``char_end``, offsets relative to it."""
        i = bisect.bisect_left(self.char_starts, char_start)
        j = bisect.bisect_left(self.char_starts, char_end, lo=i)
        return [
            (
                self.starts[k],
                self.ends[k],
                self.char_starts[k] - char_start,
                self.char_ends[k] - char_start,
            )
            for k in range(i, j)
        ]
