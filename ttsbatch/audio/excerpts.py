"""A run of a document's chunks as a WAV file of its own, and what a byte range of it reads.

A chapter can be played before its document is stitched: its WAV is a header,
then each chunk's PCM followed by the pause the stitch puts after it
(:func:`ttsbatch.audio.stitching.layout`), so its bytes after the header are
the stitched document's bytes for that chapter. The file is never written:
:meth:`Excerpt.pieces` says which stored bytes (or silence) a byte range of it
covers, so that a server answers HTTP range requests with reads of just those
bytes. Pure: the caller reads.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ttsbatch.audio.stitching import SAMPLE_WIDTH, Placement, total_samples
from ttsbatch.audio.wav import HEADER_SIZE, wav_header


@dataclass(frozen=True, slots=True)
class ChunkBytes:
    """Bytes ``start`` to ``end`` (exclusive) of chunk ``index``'s stored PCM."""

    index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        """The number of bytes."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Silence:
    """``size`` bytes of digital silence (part of a pause)."""

    size: int


#: A piece of a byte range: literal bytes (of the header), a chunk's stored bytes, silence.
Piece = bytes | ChunkBytes | Silence


@dataclass(frozen=True, slots=True)
class Excerpt:
    """A WAV made of chunks and pauses: its header, placements and where each chunk's PCM lies.

    Build it with :meth:`of`.
    """

    header: bytes
    placements: tuple[Placement, ...]
    #: The byte offset in the file of each placement's PCM (its pause follows it).
    offsets: tuple[int, ...]
    size: int

    @classmethod
    def of(cls, placements: Sequence[Placement], sample_rate: int) -> Excerpt:
        """Return the WAV of ``placements`` in order, each chunk followed by its pause.

        Raises:
            JobError: if the audio exceeds the 4 GiB limit of the WAV format.
        """
        header = wav_header(total_samples(placements), sample_rate, streamed=True)
        offsets: list[int] = []
        cursor = HEADER_SIZE
        for place in placements:
            offsets.append(cursor)
            cursor += (place.samples + place.gap) * SAMPLE_WIDTH
        return cls(header, tuple(placements), tuple(offsets), cursor)

    def pieces(self, start: int, end: int) -> Iterator[Piece]:
        """Yield what bytes ``start`` to ``end`` (exclusive) of the file are made of, in order.

        The range is clipped to the file; empty pieces are never yielded.
        """
        start, end = max(start, 0), min(end, self.size)
        if start >= end:
            return
        if start < HEADER_SIZE:
            yield self.header[start : min(end, HEADER_SIZE)]
            start = HEADER_SIZE
        # The placement whose PCM or pause holds `start`: the last one beginning at or before it.
        i = bisect.bisect_right(self.offsets, start) - 1
        while start < end:
            place, offset = self.placements[i], self.offsets[i]
            pcm_end = offset + place.samples * SAMPLE_WIDTH
            if start < pcm_end:
                stop = min(end, pcm_end)
                yield ChunkBytes(place.index, start - offset, stop - offset)
                start = stop
            pause_end = pcm_end + place.gap * SAMPLE_WIDTH
            if start < end and start < pause_end:
                stop = min(end, pause_end)
                yield Silence(stop - start)
                start = stop
            i += 1
